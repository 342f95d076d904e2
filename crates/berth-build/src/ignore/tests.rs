use super::*;

fn p(text: &str) -> Patterns {
    Patterns::parse(text).expect("valid .dockerignore")
}

#[test]
fn reading_the_file() {
    let pats =
        p("\u{feff}# comment\n\n  node_modules  \n/abs\n./dot\ntrailing/\n!  ./keep/me \n a/../b\n  # not a comment\n");
    assert_eq!(pats.lines(), ["node_modules", "abs", "dot", "trailing", "!keep/me", "b", "# not a comment"]);
    assert!(pats.has_exclusions());
    assert!(!pats.is_empty());
    assert!(p("# only\n\n").is_empty());
    assert!(!p("a\n").has_exclusions());
    // CRLF line ends.
    assert_eq!(p("a\r\nb\r\n").lines(), ["a", "b"]);
}

#[test]
fn invalid_patterns() {
    assert_eq!(Patterns::parse("!\n"), Err(IgnoreError::IllegalExclusion));
    assert_eq!(Patterns::parse("[a-\n"), Err(IgnoreError::BadPattern("[a-".into())));
    assert_eq!(Patterns::parse("a[\n"), Err(IgnoreError::BadPattern("a[".into())));
    assert_eq!(Patterns::parse("a\\\n"), Err(IgnoreError::BadPattern("a\\".into())));
    let e = Patterns::parse("x[\n").expect_err("bad");
    assert!(e.to_string().contains("\"x[\""), "{e}");
}

#[test]
fn literal_and_directory_patterns() {
    let pats = p("build\nsrc/gen\n");
    assert!(pats.matches("build"));
    assert!(pats.matches("build/out/x.o"));
    assert!(pats.matches("src/gen"));
    assert!(pats.matches("src/gen/a.rs"));
    assert!(!pats.matches("src/main.rs"));
    assert!(!pats.matches("src/build"), "patterns are anchored at the context root");
    assert!(!pats.matches("builder"));
    assert!(pats.matches("./build/x"), "paths are cleaned");
}

#[test]
fn star_and_question_mark() {
    let pats = p("*.md\ntmp?\ndocs/*.txt\n");
    assert!(pats.matches("README.md"));
    assert!(!pats.matches("docs/README.md"), "* does not cross /");
    assert!(pats.matches("tmp1"));
    assert!(pats.matches("tmp1/inner"));
    assert!(!pats.matches("tmp"));
    assert!(!pats.matches("tmp12"));
    assert!(pats.matches("docs/a.txt"));
    assert!(!pats.matches("docs/sub/a.txt"));
    assert!(p("*\n").matches("anything/below"));
    assert!(p("*/foo\n").matches("a/foo"));
    assert!(!p("*/foo\n").matches("a/b/foo"));
}

#[test]
fn double_star() {
    let pats = p("**/foo\n");
    assert!(pats.matches("foo"));
    assert!(pats.matches("a/foo"));
    assert!(pats.matches("a/b/foo"));
    assert!(pats.matches("a/b/foo/c"));
    assert!(!pats.matches("a/barfoo"));

    let pats = p("foo/**\n");
    assert!(pats.matches("foo/a"));
    assert!(pats.matches("foo/a/b"));
    assert!(!pats.matches("foo"), "foo/** does not match foo itself");

    let pats = p("a/**/b\n");
    assert!(pats.matches("a/b"));
    assert!(pats.matches("a/x/b"));
    assert!(pats.matches("a/x/y/b"));
    assert!(pats.matches("a/x/y/b/z"));
    assert!(!pats.matches("a/xb"));

    let pats = p("**/*.go\n");
    assert!(pats.matches("main.go"));
    assert!(pats.matches("cmd/x/main.go"));
    assert!(!pats.matches("main.gox"));

    assert!(p("**\n").matches("x/y"));
    assert!(p("a/**/*.o\n").matches("a/b/c.o"));
    // patternmatcher's suffix shortcut: `**foo` is a plain suffix.
    assert!(p("**foo\n").matches("barfoo"));
}

#[test]
fn classes_and_escapes() {
    let pats = p("[a-c]*.log\nfile[0-9]\nx[^0-9]\n");
    assert!(pats.matches("b-1.log"));
    assert!(!pats.matches("d-1.log"));
    assert!(pats.matches("file7"));
    assert!(!pats.matches("filex"));
    assert!(pats.matches("xa"));
    assert!(!pats.matches("x1"));
    let pats = p("\\*star\nq\\?\n");
    assert!(pats.matches("*star"));
    assert!(!pats.matches("astar"));
    assert!(pats.matches("q?"));
    assert!(!pats.matches("qa"));
    // Regexp metacharacters are literal.
    assert!(p("a.b\n").matches("a.b"));
    assert!(!p("a.b\n").matches("axb"));
    assert!(p("a+(b)|{c}$\n").matches("a+(b)|{c}$"));
}

#[test]
fn exceptions_last_match_wins() {
    let pats = p("*.md\n!README.md\n");
    assert!(pats.matches("CHANGES.md"));
    assert!(!pats.matches("README.md"));

    let pats = p("!README.md\n*.md\n");
    assert!(pats.matches("README.md"), "a later pattern overrides the exception");

    let pats = p("docs\n!docs/keep\n");
    assert!(pats.matches("docs"));
    assert!(pats.matches("docs/other.txt"));
    assert!(!pats.matches("docs/keep"));
    assert!(!pats.matches("docs/keep/deep/file"), "an exception for a directory re-includes its content");

    let pats = p("*\n!src\nsrc/*.tmp\n");
    assert!(pats.matches("Makefile"));
    assert!(!pats.matches("src/main.rs"));
    assert!(pats.matches("src/x.tmp"));
}

#[test]
fn not_special_here() {
    let pats = p("*\n");
    assert!(pats.matches("Dockerfile"));
    assert!(pats.matches(".dockerignore"));
}

#[test]
fn walking_excluded_directories() {
    let pats = p("docs\n!docs/keep/*.txt\n");
    assert!(pats.may_contain_included("docs"));
    assert!(pats.may_contain_included("docs/keep"));
    assert!(!pats.may_contain_included("docs/other"));
    assert!(!p("docs\n").may_contain_included("docs"));
    let pats = p("vendor\n!**/LICENSE\n");
    assert!(pats.may_contain_included("vendor/x"));
    let pats = p("a\n!a/b*\n");
    assert!(pats.may_contain_included("a/bc"));
    assert!(pats.may_contain_included("a/bc/d"), "an exception matching a parent re-includes everything below");
    assert!(!pats.may_contain_included("a/c"));
}

#[test]
fn filepath_clean() {
    assert_eq!(clean(""), ".");
    assert_eq!(clean("a//b/./c/"), "a/b/c");
    assert_eq!(clean("a/../../b"), "../b");
    assert_eq!(clean("/../a"), "/a");
    assert_eq!(clean("./"), ".");
    assert_eq!(clean("/"), "/");
}
