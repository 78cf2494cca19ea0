use rand::Rng;

/// A new random id with a readable prefix, e.g. `txn_4f7k2…`: 20 characters of base 36
/// (about 103 bits), lower-case so that ids survive URLs and case-insensitive tools.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let body: String = (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}_{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::domain::WorkspaceId;

    #[test]
    fn new_workspace_ids_parse_as_workspace_ids() {
        let id = new_id("ws");
        assert!(WorkspaceId::parse(&id).is_ok(), "{id}");
        assert_ne!(new_id("ws"), id);
    }
}
