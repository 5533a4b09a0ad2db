//! Store tokens: each store's devices use that store's token; a token opens exactly one store.
use std::collections::HashMap;

use subtle::ConstantTimeEq;

/// The configured token of each store. Debug output never shows a token.
#[derive(Clone, Default)]
pub struct StoreTokens {
    /// store id → token.
    tokens: HashMap<String, String>,
}

impl std::fmt::Debug for StoreTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut stores: Vec<&String> = self.tokens.keys().collect();
        stores.sort();
        f.debug_list()
            .entries(stores.iter().map(|s| format!("{s}=***")))
            .finish()
    }
}

/// Parses `STORE_TOKENS`: `store=token,store=token`. Errors never echo a token.
pub fn parse(s: &str) -> Result<StoreTokens, String> {
    let mut tokens = HashMap::new();
    for (i, pair) in s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let (store, token) = pair
            .split_once('=')
            .ok_or_else(|| format!("entry {} is not store=token", i + 1))?;
        let (store, token) = (store.trim(), token.trim());
        shelfguard_events::validate::id("store id", store)
            .map_err(|e| format!("entry {}: {e}", i + 1))?;
        if token.len() < 8 {
            return Err(format!(
                "the token of store {store} is too short (8 characters at least)"
            ));
        }
        if tokens.insert(store.to_owned(), token.to_owned()).is_some() {
            return Err(format!("store {store} appears twice"));
        }
    }
    Ok(StoreTokens { tokens })
}

impl StoreTokens {
    /// Whether `presented` is the token of `store` (constant time in the token's content; an
    /// unknown store compares against a dummy so timing does not tell which stores exist).
    pub fn allows(&self, store: &str, presented: Option<&str>) -> bool {
        let Some(presented) = presented else {
            return false;
        };
        let (expected, known) = match self.tokens.get(store) {
            Some(t) => (t.as_str(), true),
            None => ("\u{0}no-such-store-token\u{0}", false),
        };
        let equal: bool = expected.as_bytes().ct_eq(presented.as_bytes()).into();
        equal && known
    }

    /// The configured stores, sorted (for the startup log and the local runner).
    pub fn stores(&self) -> Vec<&str> {
        let mut s: Vec<&str> = self.tokens.keys().map(String::as_str).collect();
        s.sort_unstable();
        s
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_never_show() {
        let t = parse(" S-001=alpha-secret-1 , S-002=beta-secret-2,").unwrap();
        assert_eq!(t.stores(), ["S-001", "S-002"]);
        let shown = format!("{t:?}");
        assert!(shown.contains("S-001=***"), "{shown}");
        assert!(!shown.contains("alpha"), "{shown}");
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_token_lists_are_refused_without_echoing_tokens() {
        let e = parse("S1").unwrap_err();
        assert!(e.contains("store=token"), "{e}");
        let e = parse("S1=short").unwrap_err();
        assert!(e.contains("too short") && !e.contains("short\""), "{e}");
        assert!(
            parse("S1=aaaaaaaaaa,S1=bbbbbbbbbb")
                .unwrap_err()
                .contains("twice")
        );
        assert!(parse("a/b=aaaaaaaaaa").is_err());
        let e = parse("S1=secret-but-bad,S 2=other-secret").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn a_token_opens_exactly_its_store() {
        let t = parse("S1=token-of-one,S2=token-of-two").unwrap();
        assert!(t.allows("S1", Some("token-of-one")));
        assert!(t.allows("S2", Some("token-of-two")));
        assert!(
            !t.allows("S2", Some("token-of-one")),
            "store A's token on B"
        );
        assert!(!t.allows("S1", Some("token-of-on")), "prefix");
        assert!(!t.allows("S1", Some("token-of-one2")), "longer");
        assert!(!t.allows("S1", Some("")));
        assert!(!t.allows("S1", None), "missing");
        assert!(!t.allows("S3", Some("token-of-one")), "unknown store");
        assert!(
            !t.allows("S3", Some("\u{0}no-such-store-token\u{0}")),
            "the dummy"
        );
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
