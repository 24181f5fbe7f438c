//! The web app's GraphQL documents as it sends them, shared with the api, which trusts exactly
//! these (see `api::graphql::trusted`).

/// The definition of the operation `name` in a GraphQL document of several: what the web app
/// sends of an operation. `graphql_client` sends the whole file of its query, and then every
/// request of `identity.graphql` would name `signIn` and `signUp`, which the gateway
/// rate-limits (a refresh answered `429` by the gateway was what signed the app out before
/// checkout). The whole document when the operation is not found or the document has
/// fragments. The api registers the same slices of the app's files as its trusted documents.
pub fn only_operation<'a>(document: &'a str, name: &str) -> &'a str {
    let bytes = document.as_bytes();
    // Braces count only outside parentheses: `($f: Filter = {text: "x"})` is no selection.
    let (mut depth, mut parens, mut start, mut i) = (0_usize, 0_usize, None::<usize>, 0_usize);
    let (mut found, mut fragments) = (None, false);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' if document[i..].starts_with("\"\"\"") => {
                match document[i + 3..].find("\"\"\"") {
                    Some(end) => i += 3 + end + 3,
                    None => return document,
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' => parens += 1,
            b')' => parens = parens.saturating_sub(1),
            b'{' if parens == 0 => {
                if depth == 0 && start.is_none() {
                    start = Some(i);
                }
                depth += 1;
            }
            b'}' if parens == 0 => {
                depth = depth.saturating_sub(1);
                if depth == 0
                    && let Some(s) = start.take()
                {
                    let definition = &document[s..=i];
                    let header = definition
                        .split(['(', '{'])
                        .next()
                        .unwrap_or_default()
                        .split_whitespace()
                        .collect::<Vec<_>>();
                    fragments |= header.first() == Some(&"fragment");
                    if header.get(1) == Some(&name) {
                        found = Some(definition);
                    }
                }
            }
            c if depth == 0 && start.is_none() && !c.is_ascii_whitespace() && c != b',' => {
                start = Some(i);
            }
            _ => {}
        }
        i += 1;
    }
    match found {
        Some(definition) if !fragments => definition,
        _ => document,
    }
}

#[cfg(test)]
mod tests {
    use super::only_operation;

    const DOC: &str = "# the file\nmutation SignIn($input: SignInInput!) {\n  signIn(input: $input) { accessToken }\n}\n\nmutation RefreshSession($refreshToken: String!) {\n  refreshSession(refreshToken: $refreshToken) { accessToken account { id } }\n}\n\nquery Me { me { name(format: \"{x}\") } }\n";

    #[test]
    fn keeps_only_the_named_operation() {
        assert_eq!(
            only_operation(DOC, "RefreshSession"),
            "mutation RefreshSession($refreshToken: String!) {\n  refreshSession(refreshToken: $refreshToken) { accessToken account { id } }\n}"
        );
        assert_eq!(
            only_operation(DOC, "SignIn"),
            "mutation SignIn($input: SignInInput!) {\n  signIn(input: $input) { accessToken }\n}"
        );
        assert_eq!(
            only_operation(DOC, "Me"),
            "query Me { me { name(format: \"{x}\") } }"
        );
    }

    #[test]
    fn braces_in_arguments_are_no_selection() {
        let doc =
            "query A($f: F = {text: \"}\"}) { items(filter: {a: {b: 1}}) { id } }\nquery B { b }";
        assert_eq!(
            only_operation(doc, "A"),
            "query A($f: F = {text: \"}\"}) { items(filter: {a: {b: 1}}) { id } }"
        );
        assert_eq!(only_operation(doc, "B"), "query B { b }");
    }

    #[test]
    fn falls_back_to_the_whole_document() {
        assert_eq!(only_operation(DOC, "Missing"), DOC);
        let with_fragment = "query A { ...F }\nfragment F on Query { me { id } }";
        assert_eq!(only_operation(with_fragment, "A"), with_fragment);
    }
}
