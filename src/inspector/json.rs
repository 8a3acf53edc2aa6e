//! A raw JSON body made readable: indented, with its keys in the order they were sent and its
//! numbers and strings exactly as written (a `serde_json::Value` would sort the keys and
//! rewrite numbers), and with the values of personal keys replaced when personal data is
//! hidden.

/// What a hidden value is replaced with.
pub(super) const HIDDEN: &str = "\"(hidden)\"";

/// The body indented by two spaces, with the values of `hidden_keys` (in objects at any depth)
/// replaced by [`HIDDEN`]; a body that is not JSON as it is, unless keys are to be hidden, when
/// nothing of it is shown.
pub(super) fn pretty(body: &str, hidden_keys: &[&str]) -> String {
    if serde_json::from_str::<serde::de::IgnoredAny>(body).is_err() {
        return if hidden_keys.is_empty() {
            body.to_owned()
        } else {
            "(not JSON: hidden with personal data)".to_owned()
        };
    }
    let mut printer = Printer {
        text: body.as_bytes(),
        at: 0,
        out: String::with_capacity(body.len() * 2),
        hidden_keys,
    };
    printer.value(0, false);
    printer.out
}

/// Walks a body already known to be valid JSON, writing it indented.
struct Printer<'a> {
    text: &'a [u8],
    at: usize,
    out: String,
    hidden_keys: &'a [&'a str],
}

impl<'a> Printer<'a> {
    /// Writes (or, when `hide`, skips and replaces) the value at the cursor.
    fn value(&mut self, depth: usize, hide: bool) {
        self.skip_space();
        match self.text[self.at] {
            b'{' => self.container(depth, hide, b'}'),
            b'[' => self.container(depth, hide, b']'),
            _ => {
                let scalar = self.scalar();
                self.out.push_str(if hide { HIDDEN } else { scalar });
            }
        }
    }

    /// An object or array, its members one per line.
    fn container(&mut self, depth: usize, hide: bool, close: u8) {
        let start = self.out.len();
        self.out.push(self.text[self.at] as char);
        self.at += 1;
        let mut first = true;
        loop {
            self.skip_space();
            if self.text[self.at] == close {
                self.at += 1;
                break;
            }
            if self.text[self.at] == b',' {
                self.at += 1;
                self.skip_space();
            }
            self.out.push_str(if first { "\n" } else { ",\n" });
            first = false;
            self.indent(depth + 1);
            let mut hide_member = false;
            if close == b'}' {
                let key = self.scalar();
                hide_member = self.hidden_keys.contains(&key.trim_matches('"'));
                self.out.push_str(key);
                self.skip_space();
                self.at += 1; // the colon
                self.out.push_str(": ");
            }
            self.value(depth + 1, hide_member);
        }
        if !first {
            self.out.push('\n');
            self.indent(depth);
        }
        self.out.push(close as char);
        if hide {
            self.out.truncate(start);
            self.out.push_str(HIDDEN);
        }
    }

    /// A string, number or literal, as written.
    fn scalar(&mut self) -> &'a str {
        let text = self.text;
        let start = self.at;
        if self.text[start] == b'"' {
            self.at += 1;
            while self.text[self.at] != b'"' {
                self.at += if self.text[self.at] == b'\\' { 2 } else { 1 };
            }
            self.at += 1;
        } else {
            while self.at < self.text.len()
                && !matches!(self.text[self.at], b',' | b'}' | b']' | b':')
                && !self.text[self.at].is_ascii_whitespace()
            {
                self.at += 1;
            }
        }
        // The body is a `str`, and a scalar starts and ends at ASCII bytes.
        std::str::from_utf8(&text[start..self.at]).unwrap_or("")
    }

    fn skip_space(&mut self) {
        while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str("  ");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_indented_with_keys_and_numbers_as_sent() {
        let body = r#"{"z":1.50,"a":[1, {"b":"x\"y"}],"e":{},"f":[]}"#;
        let expected = "{\n  \"z\": 1.50,\n  \"a\": [\n    1,\n    {\n      \"b\": \"x\\\"y\"\n    }\n  ],\n  \"e\": {},\n  \"f\": []\n}";
        assert_eq!(pretty(body, &[]), expected);
        let reparsed: serde_json::Value = serde_json::from_str(&pretty(body, &[])).unwrap();
        assert_eq!(
            reparsed,
            serde_json::from_str::<serde_json::Value>(body).unwrap()
        );
    }

    #[test]
    fn personal_keys_are_hidden_at_any_depth_whatever_their_value() {
        let body = r#"{"name":"Alice <img src=x>","contact":{"id":7,"name":{"first":"A"},"email":"a@b"},"list":[{"name":null}]}"#;
        let shown = pretty(body, &["name", "email"]);
        assert!(
            !shown.contains("Alice") && !shown.contains("a@b") && !shown.contains("first"),
            "{shown}"
        );
        assert!(shown.contains("\"id\": 7"));
        assert_eq!(shown.matches(HIDDEN).count(), 4);
        serde_json::from_str::<serde_json::Value>(&shown).expect("still JSON");
    }

    #[test]
    fn a_body_that_is_not_json_is_shown_as_it_is_unless_hiding() {
        assert_eq!(pretty("not json", &[]), "not json");
        assert!(!pretty("Alice's note", &["name"]).contains("Alice"));
    }
}
