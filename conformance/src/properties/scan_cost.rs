//! Scan cost: a page costs what the page holds, not what the space holds.
//!
//! The contract says a scan's cost is proportional to the page. A store
//! that reads a whole space and filters it (a prefix as a filter instead of
//! a key range, a cursor found by walking from the start) passes every
//! correctness check and falls over in production. This property compares
//! the same short pages taken from a large space and from a small one: the
//! first page, the page of a prefix whose ids sort last, and the page after
//! a cursor halfway through. Times are never compared with a constant, only
//! with each other: the large space's page may take at most
//! [`COST_RATIO_BOUND`] times as long.
//!
//! Against noise: each sample times several requests in a row, samples of
//! the two spaces alternate (so a busy moment slows both), the median of
//! several samples is compared, and a measurement that exceeds the bound is
//! repeated — a store whose pages really cost the space exceeds it every
//! time.

use std::time::Duration;

use bytes::Bytes;
use state_api::{Cursor, Key, StateStore};
use tokio::time::Instant;

use crate::findings::Findings;
use crate::kit::{Context, Failure, Outcome};

/// How many times longer a page of the large space may take.
pub const COST_RATIO_BOUND: f64 = 5.0;

/// Entries in the small space.
const SMALL_SPACE: usize = 20;

/// Entries in the large space at the default scale (more at larger ones).
const LARGE_SPACE: usize = 2_000;

/// The page size measured.
const PAGE: usize = 10;

/// Ids with this prefix sort after every other id of a space.
const LAST_PREFIX: &str = "z";

/// Requests timed together as one sample.
const REQUESTS_PER_SAMPLE: usize = 4;

/// Samples per space and kind of page; the median is compared.
const SAMPLES: usize = 9;

/// Measurements made before a ratio over the bound counts as a failure.
const ATTEMPTS: usize = 3;

/// How many writes are in flight while a space is filled.
const WRITERS: usize = 16;

/// One space measured: its name and the cursor halfway through it.
struct Measured {
    space: String,
    halfway: Cursor,
}

/// The kinds of page compared.
#[derive(Debug, Clone, Copy)]
enum PageKind {
    First,
    LastPrefix,
    AfterHalfway,
}

impl PageKind {
    const ALL: [PageKind; 3] = [PageKind::First, PageKind::LastPrefix, PageKind::AfterHalfway];

    fn describe(self) -> &'static str {
        match self {
            PageKind::First => "the first page",
            PageKind::LastPrefix => "the page of a prefix whose ids sort last",
            PageKind::AfterHalfway => "the page after a cursor halfway through",
        }
    }
}

/// Fills `space` with `count` entries: ids `p000000`... and, last in
/// order, [`PAGE`] ids starting with [`LAST_PREFIX`].
async fn fill(cx: &Context, space: &str, count: usize) -> Result<(), Failure> {
    let ids: Vec<String> = (0..count - PAGE)
        .map(|n| format!("p{n:06}"))
        .chain((0..PAGE).map(|n| format!("{LAST_PREFIX}{n:02}")))
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (store, space) = (cx.backend.store.clone(), space.to_owned());
            let mine: Vec<String> = ids.iter().skip(writer).step_by(WRITERS).cloned().collect();
            tokio::spawn(async move {
                for id in mine {
                    store.set(&Key::new(&space, &id)?, Bytes::from_static(b"entry"), None).await?;
                }
                Ok::<(), state_api::StateError>(())
            })
        })
        .collect();
    for writer in writers {
        writer.await.map_err(|e| Failure(format!("a writer died: {e}")))??;
    }
    Ok(())
}

/// The cursor after at least half of `count` entries, reached by scanning
/// the way an application would.
async fn halfway(store: &dyn StateStore, space: &str, count: usize) -> Result<Cursor, Failure> {
    let (mut seen, mut cursor) = (0, None);
    while seen < count / 2 {
        let limit = (count / 2 - seen).clamp(1, state_api::MAX_SCAN_LIMIT);
        let page = store.scan(space, "", cursor.as_ref(), limit).await?;
        seen += page.items.len();
        cursor = Some(page.next.ok_or_else(|| Failure(format!("a scan of {count} entries ended after {seen}")))?);
    }
    cursor.ok_or_else(|| Failure("an empty space has no halfway cursor".into()))
}

/// Times [`REQUESTS_PER_SAMPLE`] requests of one kind of page.
async fn sample(store: &dyn StateStore, measured: &Measured, kind: PageKind) -> Result<Duration, Failure> {
    let started = Instant::now();
    for _ in 0..REQUESTS_PER_SAMPLE {
        let page = match kind {
            PageKind::First => store.scan(&measured.space, "", None, PAGE).await?,
            PageKind::LastPrefix => store.scan(&measured.space, LAST_PREFIX, None, PAGE).await?,
            PageKind::AfterHalfway => store.scan(&measured.space, "", Some(&measured.halfway), PAGE).await?,
        };
        std::hint::black_box(page);
    }
    Ok(started.elapsed())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// The median sample of each space, small first, samples alternating.
async fn measure(
    store: &dyn StateStore,
    small: &Measured,
    large: &Measured,
    kind: PageKind,
) -> Result<(Duration, Duration), Failure> {
    let (mut of_small, mut of_large) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
    for _ in 0..SAMPLES {
        of_small.push(sample(store, small, kind).await?);
        of_large.push(sample(store, large, kind).await?);
    }
    Ok((median(of_small), median(of_large)))
}

/// Runs the property.
pub async fn run(cx: &Context) -> Outcome {
    let store = cx.backend.store.as_ref();
    let large_count = cx.scale.count(LARGE_SPACE).max(LARGE_SPACE);
    let (small_space, large_space) = (cx.space("cost-small"), cx.space("cost-large"));
    let (small_filled, large_filled) =
        tokio::join!(fill(cx, &small_space, SMALL_SPACE), fill(cx, &large_space, large_count));
    small_filled?;
    large_filled?;
    let small = Measured { halfway: halfway(store, &small_space, SMALL_SPACE).await?, space: small_space };
    let large = Measured { halfway: halfway(store, &large_space, large_count).await?, space: large_space };

    let mut findings = Findings::new();
    for kind in PageKind::ALL {
        let (mut ratios, mut within) = (Vec::with_capacity(ATTEMPTS), false);
        for _ in 0..ATTEMPTS {
            let (of_small, of_large) = measure(store, &small, &large, kind).await?;
            let ratio = of_large.as_secs_f64() / of_small.as_secs_f64().max(f64::MIN_POSITIVE);
            ratios.push(format!("{ratio:.1}x ({of_large:?} vs {of_small:?})"));
            within = ratio <= COST_RATIO_BOUND;
            if within {
                break;
            }
        }
        findings.check(within, || {
            format!(
                "{} of {PAGE} entries took over {COST_RATIO_BOUND}x as long from a space of {large_count} entries as \
                 from one of {SMALL_SPACE}, in each of {ATTEMPTS} measurements: {}; a page must cost what it holds, \
                 not what the space holds",
                kind.describe(),
                ratios.join(", ")
            )
        });
    }
    findings.outcome()
}
