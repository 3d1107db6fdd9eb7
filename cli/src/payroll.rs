//! Payroll CSV: one `address,amount` row per payment; blank lines and `#` comments are
//! skipped, and a first row `address,amount` is taken as a header. An address may appear once
//! (a second row for it is almost always a mistake that would pay the worker twice). A file of
//! more than [`MAX_PAYROLL_PAYMENTS`] rows is sent as several payroll transactions, in file order.

use std::collections::BTreeMap;

#[cfg(doc)]
use stint_contracts::MAX_PAYROLL_PAYMENTS;
use stint_contracts::{AccountId, Payment};

use crate::error::CliError;

/// Parses a payroll CSV into payments, naming the line of the first bad row.
pub fn parse_payroll_csv(text: &str) -> Result<Vec<Payment>, CliError> {
    let mut payments = Vec::new();
    let mut lines: BTreeMap<AccountId, usize> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| CliError::Usage(format!("payroll CSV line {line_no}: {reason}"));
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [address, amount] = fields.as_slice() else {
            return Err(bad(format!(
                "expected 2 fields `address,amount`, found {}",
                fields.len()
            )));
        };
        if payments.is_empty() && address.eq_ignore_ascii_case("address") {
            continue;
        }
        let to: AccountId =
            crate::wallet::parse_address("address", address).map_err(|e| bad(e.to_string()))?;
        if let Some(first) = lines.insert(to, line_no) {
            return Err(bad(format!(
                "{to} is paid on line {first} already (one row per worker: add the amounts up)"
            )));
        }
        let amount: u64 = amount.parse().map_err(|_| {
            bad(format!(
                "bad amount {amount:?}: expected a whole number of units"
            ))
        })?;
        if amount == 0 {
            return Err(bad("amount must be positive".into()));
        }
        payments.push(Payment { to, amount });
    }
    if payments.is_empty() {
        return Err(CliError::Usage("payroll CSV has no payments".into()));
    }
    Ok(payments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(seed: u8) -> String {
        AccountId::from_signing_key(&k256::schnorr::SigningKey::from_bytes(&[seed; 32]).unwrap())
            .to_string()
    }

    #[test]
    fn parses_rows_header_comments_and_blank_lines() {
        let csv = format!(
            "address,amount\n# march\n{} , 300\n\n{},700\n",
            addr(1),
            addr(2)
        );
        let payments = parse_payroll_csv(&csv).unwrap();
        assert_eq!(payments.len(), 2);
        assert_eq!(payments[0].amount, 300);
        assert_eq!(payments[1].to.to_string(), addr(2));
    }

    #[test]
    fn more_rows_than_one_transaction_holds_are_accepted() {
        let csv: String = (1..=40).map(|i| format!("{},{i}\n", addr(i))).collect();
        assert_eq!(parse_payroll_csv(&csv).unwrap().len(), 40);
    }

    #[test]
    fn bad_rows_name_their_line() {
        let a = addr(1);
        let mut broken = a.clone();
        broken.pop();
        broken.push(if a.ends_with('q') { 'p' } else { 'q' });
        for (csv, want) in [
            (format!("{a},1\n{a}\n"), "line 2: expected 2 fields"),
            (format!("{a},ten\n"), "line 1: bad amount"),
            (format!("{a},-5\n"), "line 1: bad amount"),
            (format!("{a},0\n"), "line 1: amount must be positive"),
            (format!("{broken},5\n"), "line 1: address"),
            (format!("{a},5\n{},1\n{a},7\n", addr(2)), "line 3: "),
            (format!("{a},5\n{a},7\n"), "paid on line 1 already"),
            ("\n# nothing\n".to_string(), "no payments"),
        ] {
            let err = parse_payroll_csv(&csv).unwrap_err().to_string();
            assert!(err.contains(want), "{csv:?}: {err}");
        }
    }
}
