use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn word(w: &str, e: &[(&str, &str)]) -> String {
    Lex::new('\\').process_word(w, &env(e)).expect("expands")
}

fn words(w: &str, e: &[(&str, &str)]) -> Vec<String> {
    Lex::new('\\').process_words(w, &env(e)).expect("expands")
}

fn err(w: &str, e: &[(&str, &str)]) -> String {
    Lex::new('\\').process_word(w, &env(e)).expect_err("fails").to_string()
}

#[test]
fn plain_references() {
    let e = [("A", "a"), ("B", "b b")];
    assert_eq!(word("$A", &e), "a");
    assert_eq!(word("${A}", &e), "a");
    assert_eq!(word("x${A}y", &e), "xay");
    assert_eq!(word("$A$B", &e), "ab b");
    assert_eq!(word("$UNSET", &e), "");
    assert_eq!(word("${UNSET}x", &e), "x");
    assert_eq!(word("$Ax", &e), "");
    // `$` without a name stays.
    assert_eq!(word("a$", &e), "a$");
    assert_eq!(word("$/x", &e), "$/x");
    assert_eq!(word("$ x", &e), "$ x");
}

#[test]
fn special_parameters_are_not_special_in_dockerfiles() {
    assert_eq!(word("$$", &[]), "");
    assert_eq!(word("a$@b", &[]), "ab");
    assert_eq!(word("$1x", &[]), "x");
    assert_eq!(word("$12", &[("12", "twelve")]), "twelve");
}

#[test]
fn defaults_and_alternatives() {
    let e = [("SET", "v"), ("EMPTY", "")];
    assert_eq!(word("${SET:-d}", &e), "v");
    assert_eq!(word("${EMPTY:-d}", &e), "d");
    assert_eq!(word("${UNSET:-d}", &e), "d");
    assert_eq!(word("${SET-d}", &e), "v");
    assert_eq!(word("${EMPTY-d}", &e), "");
    assert_eq!(word("${UNSET-d}", &e), "d");
    assert_eq!(word("${SET:+alt}", &e), "alt");
    assert_eq!(word("${EMPTY:+alt}", &e), "");
    assert_eq!(word("${UNSET:+alt}", &e), "");
    assert_eq!(word("${SET+alt}", &e), "alt");
    assert_eq!(word("${EMPTY+alt}", &e), "alt");
    assert_eq!(word("${UNSET+alt}", &e), "");
    // Nested expansion in the operand.
    assert_eq!(word("${UNSET:-$SET/x}", &e), "v/x");
    assert_eq!(word("${UNSET:-${SET:+y}}", &e), "y");
    assert_eq!(word("${UNSET:-a b}", &e), "a b");
}

#[test]
fn required_variables() {
    let e = [("SET", "v"), ("EMPTY", "")];
    assert_eq!(word("${SET:?boom}", &e), "v");
    assert_eq!(word("${EMPTY?boom}", &e), "");
    assert_eq!(err("${UNSET:?boom}", &e), "UNSET: boom");
    assert_eq!(err("${EMPTY:?}", &e), "EMPTY: is not allowed to be empty");
    assert_eq!(err("${UNSET:?}", &e), "UNSET: is not allowed to be unset");
    assert_eq!(err("${UNSET?}", &e), "UNSET: is not allowed to be unset");
    assert_eq!(err("${UNSET?must be set}", &e), "UNSET: must be set");
}

#[test]
fn syntax_errors() {
    assert_eq!(err("${}", &[]), "syntax error: bad substitution");
    assert_eq!(err("${:a}", &[]), "syntax error: bad substitution");
    assert_eq!(err("${A", &[]), "syntax error: missing '}'");
    assert_eq!(err("${A:-x", &[]), "syntax error: missing '}'");
    assert_eq!(err("${A:=x}", &[("A", "1")]), "unsupported modifier (:=) in substitution");
    assert_eq!(err("${A=x}", &[("A", "1")]), "unsupported modifier (=) in substitution");
    assert_eq!(err("${A:#x}", &[("A", "1")]), "unsupported modifier (:#) in substitution");
    assert_eq!(err("${A b}", &[]), "unsupported modifier ( ) in substitution");
    assert_eq!(err("${A/x", &[("A", "1")]), "syntax error: missing '/' in ${}");
    assert_eq!(err("${A#\\q}", &[("A", "1")]), "invalid pattern (\\q) in substitution: invalid escape '\\q'");
    assert_eq!(err("'abc", &[]), "unexpected end of statement while looking for matching single-quote");
    assert_eq!(err("\"abc", &[]), "unexpected end of statement while looking for matching double-quote");
}

#[test]
fn quotes_and_escapes() {
    let e = [("A", "a")];
    assert_eq!(word("'$A'", &e), "$A");
    assert_eq!(word("\"$A\"", &e), "a");
    assert_eq!(word("\"${A}b\"", &e), "ab");
    assert_eq!(word("\\$A", &e), "$A");
    assert_eq!(word("\\${A}", &e), "${A}");
    assert_eq!(word("a\\ b", &e), "a b");
    assert_eq!(word("\\\\", &e), "\\");
    assert_eq!(word("ab\\", &e), "ab");
    // In double quotes the escape only escapes `"`, `$` and itself.
    assert_eq!(word(r#""a\"b""#, &e), "a\"b");
    assert_eq!(word(r#""\$A""#, &e), "$A");
    assert_eq!(word(r#""a\\b""#, &e), "a\\b");
    assert_eq!(word(r#""a\nb""#, &e), "a\\nb");
    // No escaping inside single quotes.
    assert_eq!(word(r"'a\b'", &e), "a\\b");
    assert_eq!(word(r#"'a"b'"#, &e), "a\"b");
    assert_eq!(word(r#""a'b""#, &e), "a'b");
    assert_eq!(word("a'b'\"c\"d", &e), "abcd");
}

#[test]
fn backtick_escape() {
    let lex = Lex::new('`');
    let e = env(&[("A", "a")]);
    assert_eq!(lex.process_word("`$A", &e).expect("ok"), "$A");
    assert_eq!(lex.process_word(r"C:\dir\$A", &e).expect("ok"), r"C:\dir\a");
    assert_eq!(lex.process_word("\"x`\"y\"", &e).expect("ok"), "x\"y");
    assert_eq!(lex.process_word("a` b", &e).expect("ok"), "a b");
}

#[test]
fn word_splitting() {
    let e = [("A", "a b"), ("E", "")];
    assert_eq!(words("x y  z", &e), ["x", "y", "z"]);
    assert_eq!(words("$A", &e), ["a", "b"]);
    assert_eq!(words("\"$A\"", &e), ["a b"]);
    assert_eq!(words("'a b' c", &e), ["a b", "c"]);
    assert_eq!(words("a\\ b c", &e), ["a b", "c"]);
    assert_eq!(words("x$A", &e), ["xa", "b"]);
    assert_eq!(words("$E", &e), Vec::<String>::new());
    assert_eq!(words("a \"\" b", &e), ["a", "b"]);
    assert_eq!(words("  lead trail  ", &e), ["lead", "trail"]);
    // process_word keeps the whitespace.
    assert_eq!(word("  a  b ", &e), "  a  b ");
}

#[test]
fn pattern_operators() {
    let e = [("P", "/usr/local/bin/tool.tar.gz")];
    assert_eq!(word("${P#*/}", &e), "usr/local/bin/tool.tar.gz");
    assert_eq!(word("${P##*/}", &e), "tool.tar.gz");
    assert_eq!(word("${P%.*}", &e), "/usr/local/bin/tool.tar");
    assert_eq!(word("${P%%.*}", &e), "/usr/local/bin/tool");
    assert_eq!(word("${P#nomatch}", &e), "/usr/local/bin/tool.tar.gz");
    assert_eq!(word("${P/local/opt}", &e), "/usr/opt/bin/tool.tar.gz");
    assert_eq!(word("${P//\\//_}", &e), "_usr_local_bin_tool.tar.gz");
    assert_eq!(word("${P/\\//_}", &e), "_usr/local/bin/tool.tar.gz");
    assert_eq!(word("${P/t*l/X}", &e), "/usr/local/bin/X.tar.gz");
    assert_eq!(word("${UNSET#x}", &e), "");
    assert_eq!(word("${P#\\*}", &e), "/usr/local/bin/tool.tar.gz");
    assert_eq!(word("${S#\\*}", &[("S", "*x")]), "x");
    assert_eq!(word("${S%\\}}", &[("S", "a}")]), "a");
    assert_eq!(word("${S#[ab]}", &[("S", "[ab]c")]), "c");
    assert_eq!(word("${S%?}", &[("S", "abc")]), "ab");
    assert_eq!(word("${S//?/x}", &[("S", "abc")]), "xxx");
}

#[test]
fn referenced_names() {
    let lex = Lex::new('\\');
    assert_eq!(lex.referenced("$A ${B} ${C:-$D} '$E' \\$F ${A}"), ["A", "B", "C", "D"]);
    assert_eq!(lex.referenced("${X:?$Y} $$ $1"), ["X", "Y"]);
    assert!(lex.referenced("plain").is_empty());
}

#[test]
fn env_implementations() {
    let lex = Lex::new('\\');
    let v = vec![("A".to_owned(), "1".to_owned()), ("A".to_owned(), "2".to_owned())];
    assert_eq!(lex.process_word("$A", &v).expect("ok"), "2");
    let slice: &[(String, String)] = &v;
    assert_eq!(lex.process_word("$A", &slice).expect("ok"), "2");
    let b: BTreeMap<String, String> = [("A".to_owned(), "b".to_owned())].into();
    assert_eq!(lex.process_word("$A", &b).expect("ok"), "b");
    assert_eq!(lex.process_word("$A", &()).expect("ok"), "");
    let top = env(&[("A", "top")]);
    assert_eq!(lex.process_word("$A", &Layered(&top, &b)).expect("ok"), "top");
    assert_eq!(lex.process_word("$A", &Layered(&(), &b)).expect("ok"), "b");
}

#[test]
fn skip_unset_keeps_references() {
    let lex = Lex::heredoc_finder();
    assert_eq!(lex.process_word("$A/${B}", &()).expect("ok"), "$A/${B}");
    assert_eq!(lex.process_word("'q' \\x", &()).expect("ok"), "'q' \\x");
}
