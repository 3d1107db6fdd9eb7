//! The result table: one [`Row`] per figure, each beside the ceiling or peer it is judged against.

use std::fmt::Write as _;

/// A measured quantity and its unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    /// The number.
    pub value: f64,
    /// Its unit, e.g. `"tx/s"`.
    pub unit: &'static str,
}

impl Measure {
    /// A measure of `value` in `unit`.
    pub fn new(value: f64, unit: &'static str) -> Self {
        Self { value, unit }
    }

    fn render(&self) -> String {
        format!("{} {}", human(self.value), self.unit)
    }
}

/// How a row's ratio is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The ratio must be at least this.
    AtLeast(f64),
    /// The value (not the ratio) must be at most this.
    ValueAtMost(f64),
    /// The value (not the ratio) must be at least this.
    ValueAtLeast(f64),
}

impl Target {
    /// Whether `row` meets the target (`None` when the row lacks the figure to judge).
    pub fn met(&self, row: &Row) -> Option<bool> {
        match *self {
            Target::AtLeast(min) => row.ratio.map(|r| r >= min),
            Target::ValueAtMost(max) => Some(row.value.value <= max),
            Target::ValueAtLeast(min) => Some(row.value.value >= min),
        }
    }

    fn render(&self, row: &Row) -> String {
        let mark = match self.met(row) {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "?",
        };
        match *self {
            Target::AtLeast(min) => format!("ratio ≥ {min} ({mark})"),
            Target::ValueAtMost(max) => format!("≤ {} ({mark})", human(max)),
            Target::ValueAtLeast(min) => format!("≥ {} ({mark})", human(min)),
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Stable identifier (for tests and scripts), e.g. `"replay.transfers.all"`.
    pub id: String,
    /// Human-readable name.
    pub metric: String,
    /// What was measured.
    pub value: Measure,
    /// The ceiling or peer on the same machine in the same run, with its label.
    pub reference: Option<(String, Measure)>,
    /// `value / reference` (or the row's own ratio, e.g. a speed-up).
    pub ratio: Option<f64>,
    /// The target for this row, if any.
    pub target: Option<Target>,
}

impl Row {
    /// A row with a value only.
    pub fn new(id: impl Into<String>, metric: impl Into<String>, value: Measure) -> Self {
        Self {
            id: id.into(),
            metric: metric.into(),
            value,
            reference: None,
            ratio: None,
            target: None,
        }
    }

    /// Compare against a ceiling or peer; the ratio becomes `value / reference`.
    pub fn against(mut self, label: impl Into<String>, reference: Measure) -> Self {
        self.ratio = (reference.value != 0.0).then(|| self.value.value / reference.value);
        self.reference = Some((label.into(), reference));
        self
    }

    /// Set the ratio explicitly.
    pub fn with_ratio(mut self, ratio: f64) -> Self {
        self.ratio = Some(ratio);
        self
    }

    /// Attach the target.
    pub fn with_target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    fn cells(&self) -> [String; 5] {
        [
            self.metric.clone(),
            self.value.render(),
            self.reference
                .as_ref()
                .map(|(label, m)| format!("{} ({label})", m.render()))
                .unwrap_or_else(|| "—".into()),
            self.ratio
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "—".into()),
            self.target
                .map(|t| t.render(self))
                .unwrap_or_else(|| "—".into()),
        ]
    }
}

const HEADER: [&str; 5] = ["metric", "value", "ceiling or peer", "ratio", "target"];

/// All rows of a run, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// The rows.
    pub rows: Vec<Row>,
}

impl Table {
    /// Append rows.
    pub fn extend(&mut self, rows: impl IntoIterator<Item = Row>) {
        self.rows.extend(rows);
    }

    /// The row with this id.
    pub fn get(&self, id: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.id == id)
    }

    /// The table as aligned plain text (for the terminal).
    pub fn to_text(&self) -> String {
        let cells: Vec<[String; 5]> = self.rows.iter().map(Row::cells).collect();
        let mut widths = HEADER.map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, row: &[String]| {
            let padded: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            let _ = writeln!(out, "{}", padded.join(" | ").trim_end());
        };
        line(&mut out, &HEADER.map(String::from));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let _ = writeln!(out, "{}", rule.join("-+-"));
        for row in &cells {
            line(&mut out, row);
        }
        out
    }

    /// The table as GitHub-flavoured Markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("| {} |\n|{}\n", HEADER.join(" | "), " --- |".repeat(5));
        for row in self.rows.iter().map(Row::cells) {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }
}

/// `1234567.8` → `"1,234,568"`; small values keep up to 3 significant decimals.
pub fn human(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    if value == 0.0 {
        return "0".into();
    }
    if value.abs() >= 100.0 {
        let rounded = value.round() as i128;
        let digits = rounded.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        if rounded < 0 {
            grouped.insert(0, '-');
        }
        grouped
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(human(1_234_567.8), "1,234,568");
        assert_eq!(human(999.4), "999");
        assert_eq!(human(42.25), "42.2");
        assert_eq!(human(1.5), "1.50");
        assert_eq!(human(0.0), "0");
    }

    #[test]
    fn ratio_and_target() {
        let row = Row::new("a", "a", Measure::new(90.0, "tx/s"))
            .against("ceiling", Measure::new(100.0, "tx/s"))
            .with_target(Target::AtLeast(0.85));
        assert_eq!(row.ratio, Some(0.9));
        assert_eq!(Target::AtLeast(0.85).met(&row), Some(true));
        let table = Table { rows: vec![row] };
        assert!(table.to_text().contains("(met)"));
        assert!(table.to_markdown().starts_with("| metric |"));
    }
}
