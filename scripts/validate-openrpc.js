// Validates OpenRPC documents with the OpenRPC project's own validator
// (@open-rpc/schema-utils-js). Usage: node scripts/validate-openrpc.js FILE...
// Exits non-zero when a file is missing, is not JSON, or is not a valid OpenRPC document.
"use strict";
const fs = require("fs");
const { validateOpenRPCDocument } = require("@open-rpc/schema-utils-js");

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: validate-openrpc.js FILE...");
  process.exit(2);
}
let failed = false;
for (const file of files) {
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    console.error(`${file}: cannot read a JSON document: ${e.message}`);
    failed = true;
    continue;
  }
  const result = validateOpenRPCDocument(doc);
  if (result === true) {
    console.error(`${file}: valid OpenRPC ${doc.openrpc} (${doc.methods.length} methods)`);
  } else {
    console.error(`${file}: INVALID: ${result.message || JSON.stringify(result)}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
