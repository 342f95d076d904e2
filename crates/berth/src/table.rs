//! Go's `text/tabwriter` with the settings docker uses for every table (`minwidth 10, tabwidth 1, padding 3,
//! padchar ' '`): tab-terminated cells are aligned per column block; the last cell of a line is not.

/// A tab writer: collect text with [`TabWriter::push`], then take the aligned text from [`TabWriter::finish`].
#[derive(Debug, Clone)]
pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    text: String,
}

impl Default for TabWriter {
    fn default() -> Self {
        TabWriter::docker()
    }
}

impl TabWriter {
    /// Docker's settings.
    pub fn docker() -> TabWriter {
        TabWriter { minwidth: 10, padding: 3, text: String::new() }
    }

    /// Another column layout (`docker top` and `history` use the same; kept for tests).
    pub fn new(minwidth: usize, padding: usize) -> TabWriter {
        TabWriter { minwidth, padding, text: String::new() }
    }

    /// Adds text (cells separated by `\t`, lines by `\n`).
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// The aligned text.
    pub fn finish(self) -> String {
        align(&self.text, self.minwidth, self.padding)
    }
}

struct Cell {
    text: String,
    width: usize,
}

/// Aligns `text` as Go's tabwriter does (flags 0).
pub fn align(text: &str, minwidth: usize, padding: usize) -> String {
    let lines: Vec<Vec<Cell>> = text
        .split('\n')
        .map(|l| l.split('\t').map(|c| Cell { text: c.to_string(), width: c.chars().count() }).collect())
        .collect();
    let mut out = String::new();
    let mut widths = Vec::new();
    format(&lines, &mut widths, 0, lines.len(), minwidth, padding, &mut out);
    out
}

fn format(
    lines: &[Vec<Cell>],
    widths: &mut Vec<usize>,
    line0: usize,
    line1: usize,
    minwidth: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut line0 = line0;
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        // A cell in this column: print the lines before the block, then size the block.
        write_lines(lines, widths, line0, this, out);
        line0 = this;
        let mut width = minwidth;
        while this < line1 {
            let line = &lines[this];
            if column + 1 >= line.len() {
                break;
            }
            width = width.max(line[column].width + padding);
            this += 1;
        }
        widths.push(width);
        format(lines, widths, line0, this, minwidth, padding, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, widths, line0, line1, out);
}

fn write_lines(lines: &[Vec<Cell>], widths: &[usize], line0: usize, line1: usize, out: &mut String) {
    for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
        for (j, c) in line.iter().enumerate() {
            out.push_str(&c.text);
            if j < widths.len() && j + 1 < line.len() {
                out.push_str(&" ".repeat(widths[j].saturating_sub(c.width)));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_ps_header() {
        let mut t = TabWriter::docker();
        t.push("CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n");
        assert_eq!(t.finish(), "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n");
    }

    #[test]
    fn widest_cell_plus_three() {
        let out = align("REPOSITORY\tTAG\tIMAGE ID\nbusybox\tlatest\t0123456789ab\n", 10, 3);
        assert_eq!(out, "REPOSITORY   TAG       IMAGE ID\nbusybox      latest    0123456789ab\n");
    }

    #[test]
    fn blocks_end_at_shorter_lines() {
        let out = align("a\tb\tc\nlonger-cell\tx\nz\n", 1, 1);
        assert_eq!(out, "a           b c\nlonger-cell x\nz\n");
    }

    #[test]
    fn unicode_width_counts_chars() {
        let out = align("é\tx\nab\ty\n", 1, 1);
        assert_eq!(out, "é  x\nab y\n");
    }
}
