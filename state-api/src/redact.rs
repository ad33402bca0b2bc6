//! Keeping secrets out of logs and errors.

/// Replaces the password (and any user-info) of a URL with `***`, so a
/// connection string can appear in `Debug`, `Display`, errors and logs.
///
/// ```
/// use state_api::redact_url;
/// assert_eq!(redact_url("redis://:hunter2@localhost:6379/0"), "redis://***@localhost:6379/0");
/// assert_eq!(redact_url("postgres://app:pw@db/state"), "postgres://***@db/state");
/// assert_eq!(redact_url("http://localhost:8000"), "http://localhost:8000");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // Not a URL we understand: say nothing about it rather than leak it.
        return if url.contains('@') { "***".to_owned() } else { url.to_owned() };
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}://***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_owned(),
    }
}
