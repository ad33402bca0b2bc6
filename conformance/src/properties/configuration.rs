//! The configuration surface: a backend built from its `[state]` settings
//! refuses a field it does not know, naming it; and where the value limit
//! is configurable, `max_value_len` reaches the store (declared and
//! enforced), the contract's 1 KiB floor is accepted, and anything under it,
//! or a value of the wrong type, is refused naming the field; the settings
//! a suite lists as invalid are refused naming their field, and those it
//! lists as valid build a working store. Runs when the test gives the kit
//! a [`Configured`] loader.

use bytes::Bytes;
use state_api::{Key, StateError};

use crate::configured::Configured;
use crate::findings::Findings;
use crate::kit::{Context, Failure, Outcome};

/// The contract's floor for every backend's value limit.
const FLOOR: usize = 1024;

/// A limit the kit configures, above the floor and under every default.
const LIMIT: usize = 4096;

/// A field no backend has.
const UNKNOWN: &str = "kit_unknown_field";

/// Runs the property with the context's loader.
pub async fn run(cx: &Context) -> Outcome {
    let Some(configured) = cx.configured() else {
        return Err(Failure("the configuration property ran without a loader".to_owned()));
    };
    let mut findings = Findings::new();

    accepted(cx, &mut findings, configured, "", "the base settings").await?;
    for line in configured.acceptances() {
        accepted(cx, &mut findings, configured, line, &format!("`{line}`, a setting the suite lists as valid")).await?;
    }

    let unknown =
        refused_naming(&mut findings, configured, &format!("{UNKNOWN} = 1"), UNKNOWN, "an unknown field").await;

    for (line, field) in configured.refusals() {
        let message =
            refused_naming(&mut findings, configured, line, field, "a setting the suite lists as invalid").await;
        // A field the loader does not know is refused naming it too, which
        // would make the listed refusal prove nothing about the setting:
        // the unknown field's refusal, reworded for this field (leaving out
        // the loader's echo of the line itself), must not be this one.
        let unknown_field = unknown.as_ref().is_some_and(|unknown| {
            let echo = format!("{UNKNOWN} = 1");
            unknown
                .lines()
                .filter(|text| text.contains(UNKNOWN) && !text.contains(&echo))
                .any(|text| message.as_deref().is_some_and(|message| message.contains(&text.replace(UNKNOWN, field))))
        });
        findings.check(!unknown_field, || {
            format!("`{line}`, a setting the suite lists as invalid, was refused as an unknown field: `{field}` is not one of the settings")
        });
    }

    if configured.value_limit_configurable() {
        value_limit(cx, &mut findings, configured).await?;
    } else {
        let line = format!("max_value_len = {LIMIT}");
        let what = "max_value_len, which the backend declares it does not take";
        refused_naming(&mut findings, configured, &line, "max_value_len", what).await;
    }
    findings.outcome()
}

/// The store built from the base settings plus `line` writes and reads
/// back.
async fn accepted(
    cx: &Context,
    findings: &mut Findings,
    configured: &Configured,
    line: &str,
    what: &str,
) -> Result<(), Failure> {
    match configured.build(line).await {
        Ok(backend) => {
            let key = Key::new(&cx.space("config"), "base")?;
            let written = backend.store.set(&key, Bytes::from_static(b"configured"), None).await;
            let read = backend.store.get(&key).await;
            let round_trip = matches!(&read, Ok(Some(entry)) if entry.value.as_ref() == b"configured");
            findings.check(written.is_ok() && round_trip, || {
                format!("the store built from {what} wrote {written:?} and read back {read:?}")
            });
        }
        Err(refusal) => findings.fail(format!("the store could not be built from {what}: {}", chain(refusal.as_ref()))),
    }
    Ok(())
}

/// A configured limit is declared and enforced; the floor is accepted;
/// under it, or not a number, is refused naming the field.
async fn value_limit(cx: &Context, findings: &mut Findings, configured: &Configured) -> Result<(), Failure> {
    match configured.build(&format!("max_value_len = {LIMIT}")).await {
        Ok(backend) => {
            let declared = backend.capabilities().max_value_len;
            findings.check(declared == LIMIT, || {
                format!("built with max_value_len = {LIMIT}, the store declares max_value_len {declared}")
            });
            let key = Key::new(&cx.space("config"), "limit")?;
            let at = backend.store.set(&key, Bytes::from(vec![b'v'; LIMIT]), None).await;
            findings.check(at.is_ok(), || format!("a value of exactly max_value_len = {LIMIT} bytes: {at:?}"));
            let over = backend.store.set(&key, Bytes::from(vec![b'w'; LIMIT + 1]), None).await;
            let refused =
                matches!(over, Err(StateError::ValueTooLarge { size, max }) if size == LIMIT + 1 && max == LIMIT);
            findings.check(refused, || {
                format!("a value one byte over max_value_len = {LIMIT}: expected ValueTooLarge, got {over:?}")
            });
            let kept = backend.store.get(&key).await?;
            findings.check(kept.as_ref().is_some_and(|entry| entry.value.len() == LIMIT), || {
                format!("the refused value changed the entry: {kept:?}")
            });
        }
        Err(refusal) => findings.fail(format!("max_value_len = {LIMIT} was refused: {refusal}")),
    }
    match configured.build(&format!("max_value_len = {FLOOR}")).await {
        Ok(backend) => {
            let declared = backend.capabilities().max_value_len;
            findings.check(declared == FLOOR, || {
                format!("built with max_value_len = {FLOOR}, the store declares max_value_len {declared}")
            });
        }
        Err(refusal) => findings.fail(format!("max_value_len = {FLOOR}, the contract's floor, was refused: {refusal}")),
    }
    let under = format!("max_value_len = {}", FLOOR - 1);
    refused_naming(findings, configured, &under, "max_value_len", "a value limit under the 1 KiB floor").await;
    let text = format!("max_value_len = \"{LIMIT}\"");
    refused_naming(findings, configured, &text, "max_value_len", "a value limit given as a string").await;
    Ok(())
}

/// Building with `line` fails with an error that names `field`.
/// Checks that `line` is refused naming `field`; returns the refusal's
/// message.
async fn refused_naming(
    findings: &mut Findings,
    configured: &Configured,
    line: &str,
    field: &str,
    what: &str,
) -> Option<String> {
    match configured.build(line).await {
        Ok(_) => {
            findings.fail(format!("{what} (`{line}`) was accepted"));
            None
        }
        Err(refusal) => {
            let message = chain(refusal.as_ref());
            findings.check(message.contains(field), || {
                format!("{what} (`{line}`) was refused without naming `{field}`: {message}")
            });
            Some(message)
        }
    }
}

/// An error's message followed by its sources' messages.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
