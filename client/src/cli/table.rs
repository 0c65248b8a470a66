//! Plain aligned text tables, as the demo prints them.

/// Renders rows under a header, each column as wide as its widest cell.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    Streamed::start(header, rows).1
}

/// A table printed as its rows arrive (`canon status`, a page at a time):
/// the columns are as wide as the header and the first rows need; a later
/// row with a wider cell widens its column from there on.
#[derive(Debug, Clone)]
pub struct Streamed {
    widths: Vec<usize>,
}

impl Streamed {
    /// The table and the text of its header and first rows (no trailing
    /// newline), exactly as [`render`] shows them.
    pub fn start(header: &[&str], rows: &[Vec<String>]) -> (Streamed, String) {
        let mut table = Streamed {
            widths: header.iter().map(|h| h.len()).collect(),
        };
        table.widen(rows);
        let mut out = table.line(header.iter().copied());
        out.push('\n');
        let rule: Vec<String> = table.widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&table.line(rule.iter().map(String::as_str)));
        for r in rows {
            out.push('\n');
            out.push_str(&table.line(r.iter().map(String::as_str)));
        }
        (table, out)
    }

    /// The text of more rows (one line each, no trailing newline; empty
    /// for none).
    pub fn more(&mut self, rows: &[Vec<String>]) -> String {
        self.widen(rows);
        let lines: Vec<String> = rows
            .iter()
            .map(|r| self.line(r.iter().map(String::as_str)))
            .collect();
        lines.join("\n")
    }

    fn widen(&mut self, rows: &[Vec<String>]) {
        for r in rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = self.widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
    }

    /// One line: every cell but the last padded to its column's width.
    fn line<'a>(&self, cells: impl ExactSizeIterator<Item = &'a str>) -> String {
        let mut s = String::new();
        let n = cells.len();
        for (i, c) in cells.enumerate() {
            let w = self.widths.get(i).copied().unwrap_or(0);
            if i + 1 == n {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string()
    }
}
