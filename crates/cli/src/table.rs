//! Human tables (`list`, `log`, `status`, `locks`): a header, aligned columns, and —
//! on a terminal — rows that fit its width, the flexible column (a title, a detail)
//! cut with `…` rather than wrapped. Piped output is never cut: `grep` sees whole
//! titles. Built with comfy-table, so alignment counts characters' display width, not
//! bytes.
//!
//! Cells must already be escaped (`tasklease::text::escape`): a stored newline would
//! otherwise start a forged row. The table then goes out through `output::print_line`
//! like every other human line.

use comfy_table::{ColumnConstraint, ContentArrangement, Row, Table, Width};

/// Renders `rows` under `header`. `flexible` is the column that gives way when the
/// terminal is too narrow; the others keep their width.
pub fn render(header: &[&str], rows: Vec<Vec<String>>, flexible: usize) -> String {
    render_to(header, rows, flexible, terminal_width())
}

/// [`render`] for a given width (`None`: not a terminal, nothing is cut).
pub fn render_to(
    header: &[&str],
    rows: Vec<Vec<String>>,
    flexible: usize,
    width: Option<u16>,
) -> String {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(header.iter().copied());
    for r in rows {
        let mut row = Row::from(r);
        // One line per row: a long cell is cut, never wrapped under its neighbours.
        row.max_height(1);
        t.add_row(row);
    }
    match width {
        Some(w) => {
            t.set_content_arrangement(ContentArrangement::Dynamic);
            t.set_width(w);
            t.set_truncation_indicator("…");
            // Every column but the flexible one keeps its content width (up to a
            // bound, so one huge holder name cannot starve the title).
            let cols = header.len();
            let constraints = (0..cols).map(|i| {
                if i == flexible {
                    ColumnConstraint::LowerBoundary(Width::Fixed(8))
                } else {
                    ColumnConstraint::UpperBoundary(Width::Fixed(40))
                }
            });
            t.set_constraints(constraints);
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    for c in t.column_iter_mut() {
        c.set_padding((0, 2));
    }
    t.lines()
        .map(|l| l.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The width of the terminal stdout is, or `None` when stdout is not a terminal.
/// `COLUMNS` wins when set (as in `ls`), then the terminal's own size, then 80.
fn terminal_width() -> Option<u16> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|&c| c >= 20);
    Some(from_env.or_else(tty_width).unwrap_or(80))
}

#[cfg(unix)]
fn tty_width() -> Option<u16> {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .map(|w| w.ws_col)
        .filter(|&c| c >= 20)
}

#[cfg(not(unix))]
fn tty_width() -> Option<u16> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Vec<String>> {
        vec![
            vec!["a".into(), "todo".into(), "x".repeat(200)],
            vec!["longer-id".into(), "in_progress".into(), "short".into()],
        ]
    }

    #[test]
    fn columns_align_under_their_header() {
        let t = render_to(&["ID", "STATUS", "TITLE"], rows(), 2, None);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID "), "{t}");
        let at = lines[0].find("STATUS").unwrap();
        assert_eq!(lines[1].find("todo"), Some(at), "{t}");
        assert_eq!(lines[2].find("in_progress"), Some(at), "{t}");
        // Not a terminal: nothing cut.
        assert!(lines[1].ends_with(&"x".repeat(200)), "{t}");
    }

    #[test]
    fn on_a_terminal_rows_fit_and_the_flexible_column_is_cut() {
        for width in [80u16, 40] {
            let t = render_to(&["ID", "STATUS", "TITLE"], rows(), 2, Some(width));
            for l in t.lines() {
                assert!(l.chars().count() <= usize::from(width), "{width}: {l:?}");
            }
            assert!(t.lines().nth(1).unwrap().ends_with('…'), "{t}");
            assert_eq!(t.lines().count(), 3, "one line per row: {t}");
            assert!(t.contains("longer-id") && t.contains("in_progress"), "{t}");
        }
    }
}
