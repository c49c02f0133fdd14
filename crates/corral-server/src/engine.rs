//! [`Scheduler`]: continuous batching. One thread owns decoding; every iteration it admits
//! waiting requests (between steps), feeds all active sequences through one
//! `LanguageModel::forward_batch` call (prompts of new requests and the last token of the
//! others together), and hands each sequence its logits row.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Instant;

use corral::models::{LanguageModel, LogitsRequest};
use corral::sampler::{ActiveSequence, DecodeOutput, TokenLogprobs};
use corral::Model;
use tokio::sync::mpsc;
use tracing::{debug, error, warn};

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Most prompt tokens of one sequence fed in one forward pass: a long prompt goes in chunks,
/// so it holds up the other sequences' decoding for one chunk at a time and its attention
/// scratch stays bounded.
const PREFILL_CHUNK: usize = 512;

/// Prompts whose KV state is kept for reuse (each holds its whole KV cache).
const PREFIX_CACHE_ENTRIES: usize = 8;

/// Shortest shared prefix worth reusing (below it, the copy costs about what it saves).
const MIN_PREFIX: usize = 32;

/// Most memory the cached KV states may hold.
const PREFIX_CACHE_BYTES: usize = 1 << 30;

/// The KV state of recent prompts: a new prompt that begins like one of them starts from a
/// copy of its sequence, cut to the common prefix, and feeds only the rest. Requests that
/// share a long system prompt (a schema in it, say) then prefill only what differs.
struct PrefixCache {
    /// Most recently used first.
    entries: std::collections::VecDeque<(Vec<u32>, corral::models::Sequence)>,
    /// KV-cache bytes per position (all layers, keys and values, in the cache's element
    /// type), counted twice over for the buffers' spare capacity.
    bytes_per_token: usize,
}

impl PrefixCache {
    fn new(model: &corral::models::Model) -> PrefixCache {
        PrefixCache {
            entries: Default::default(),
            bytes_per_token: 2 * model.kv_bytes_per_position(),
        }
    }

    /// A sequence holding the longest cached prefix of `prompt` (leaving at least one token
    /// to feed), if one of at least [`MIN_PREFIX`] tokens is cached.
    fn lookup(&mut self, prompt: &[u32]) -> Option<corral::models::Sequence> {
        let (best, common) = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, (tokens, _))| {
                let common = tokens
                    .iter()
                    .zip(prompt)
                    .take_while(|(a, b)| a == b)
                    .count();
                (i, common.min(prompt.len().saturating_sub(1)))
            })
            .max_by_key(|&(_, common)| common)?;
        if common < MIN_PREFIX {
            return None;
        }
        let entry = self.entries.remove(best)?;
        let mut seq = entry.1.fork().ok()?;
        self.entries.push_front(entry);
        seq.truncate(common).ok()?;
        Some(seq)
    }

    /// Keep a copy of `seq`, which holds exactly `prompt`.
    fn store(&mut self, prompt: &[u32], seq: &corral::models::Sequence) {
        if prompt.len() < MIN_PREFIX {
            return;
        }
        if let Some(i) = self.entries.iter().position(|(t, _)| t == prompt) {
            if let Some(entry) = self.entries.remove(i) {
                self.entries.push_front(entry);
            }
            return;
        }
        let budget = PREFIX_CACHE_BYTES / self.bytes_per_token.max(1);
        if prompt.len() > budget {
            return;
        }
        if let Ok(copy) = seq.fork() {
            self.entries.push_front((prompt.to_vec(), copy));
            self.entries.truncate(PREFIX_CACHE_ENTRIES);
            // Oldest out until the cached positions fit the memory budget.
            while self.entries.iter().map(|(t, _)| t.len()).sum::<usize>() > budget {
                self.entries.pop_back();
            }
        }
    }
}

/// What a request's generation reports, in order.
#[derive(Debug)]
pub enum Event {
    /// New text (and the log-probabilities of the new tokens) of one choice.
    Delta {
        choice: usize,
        text: String,
        logprobs: Vec<TokenLogprobs>,
    },
    /// A choice ended.
    Done {
        choice: usize,
        output: Box<DecodeOutput>,
    },
    /// The request failed (no more events follow).
    Failed(ApiError),
}

/// One request: its choices (not yet fed) and where its events go. Dropping the receiving
/// end cancels it.
pub struct Job {
    pub choices: Vec<ActiveSequence>,
    pub events: mpsc::UnboundedSender<Event>,
    pub arrived: Instant,
    pub deadline: Instant,
    pub request_id: String,
}

/// Limits of the scheduler.
#[derive(Clone, Copy, Debug)]
pub struct SchedulerLimits {
    /// Most sequences decoded together.
    pub max_concurrent: usize,
    /// Most requests waiting for a slot; more are refused (429).
    pub max_queue: usize,
    /// Reuse the KV state of recent prompts' common prefixes.
    pub prefix_cache: bool,
}

/// The handle requests are submitted through.
#[derive(Clone)]
pub struct Scheduler {
    jobs: std_mpsc::Sender<Job>,
    queued: Arc<AtomicUsize>,
    limits: SchedulerLimits,
    metrics: Metrics,
}

impl Scheduler {
    /// Start the decoding thread for `model`.
    pub fn start(model: Arc<Model>, limits: SchedulerLimits, metrics: Metrics) -> Scheduler {
        let (jobs, rx) = std_mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let prefixes = PrefixCache::new(model.backend());
        let worker = Worker {
            model,
            jobs: rx,
            queued: queued.clone(),
            limits,
            metrics: metrics.clone(),
            running: Vec::new(),
            waiting: None,
            prefixes,
        };
        std::thread::Builder::new()
            .name("corral-scheduler".into())
            .spawn(move || worker.run())
            .map(drop)
            .unwrap_or_else(|e| panic!("cannot start the scheduler thread: {e}"));
        Scheduler {
            jobs,
            queued,
            limits,
            metrics,
        }
    }

    /// The limits.
    pub fn limits(&self) -> SchedulerLimits {
        self.limits
    }

    /// Queue a request; 429 when the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        let queued = self.queued.fetch_add(1, Ordering::SeqCst);
        if queued >= self.limits.max_queue {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::overloaded(queued));
        }
        self.metrics.queue_length.inc();
        self.jobs.send(job).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            self.metrics.queue_length.dec();
            ApiError::internal("the scheduler has stopped")
        })
    }
}

/// A request being decoded.
struct Running {
    choices: Vec<Option<ActiveSequence>>,
    /// Log-probabilities already sent, per choice.
    sent_logprobs: Vec<usize>,
    /// When each choice's last token came.
    last_token: Vec<Option<Instant>>,
    events: mpsc::UnboundedSender<Event>,
    arrived: Instant,
    deadline: Instant,
    request_id: String,
}

impl Running {
    fn is_done(&self) -> bool {
        self.choices.iter().all(Option::is_none)
    }

    fn sequences(&self) -> usize {
        self.choices.iter().flatten().count()
    }
}

struct Worker {
    model: Arc<Model>,
    jobs: std_mpsc::Receiver<Job>,
    queued: Arc<AtomicUsize>,
    limits: SchedulerLimits,
    metrics: Metrics,
    running: Vec<Running>,
    /// A job taken off the queue that waits for enough free slots.
    waiting: Option<Job>,
    prefixes: PrefixCache,
}

impl Worker {
    fn run(mut self) {
        loop {
            if !self.admit() {
                return;
            }
            self.drop_gone();
            if !self.running.is_empty() {
                // A bug in one step must not take the server down: its requests fail, the
                // scheduler goes on.
                let stepped =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step()));
                if stepped.is_err() {
                    error!("a decoding step panicked; failing its requests");
                    for r in self.running.drain(..) {
                        let _ = r.events.send(Event::Failed(ApiError::internal(
                            "the decoding step failed",
                        )));
                    }
                }
            }
            let active: usize = self.running.iter().map(Running::sequences).sum();
            self.metrics.active_sequences.set(active as i64);
        }
    }

    /// Take waiting requests while there are free slots (blocking when idle). False when
    /// the server is gone. A request counts as queued until it is admitted or dropped.
    fn admit(&mut self) -> bool {
        loop {
            let job = match self.waiting.take() {
                Some(job) => job,
                None if self.running.is_empty() => match self.jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return false,
                },
                None => match self.jobs.try_recv() {
                    Ok(job) => job,
                    Err(_) => return true,
                },
            };
            if job.events.is_closed() {
                self.dequeued();
                self.metrics.cancelled.inc();
                continue;
            }
            if Instant::now() > job.deadline {
                self.dequeued();
                let _ = job.events.send(Event::Failed(ApiError::timeout(
                    "Waiting for a decoding slot",
                    (job.deadline - job.arrived).as_secs_f64(),
                )));
                continue;
            }
            let active: usize = self.running.iter().map(Running::sequences).sum();
            if active > 0 && active + job.choices.len() > self.limits.max_concurrent {
                self.waiting = Some(job);
                return true;
            }
            self.dequeued();
            debug!(request_id = %job.request_id, choices = job.choices.len(), "admitted");
            let mut job = job;
            if let Some(first) = job.choices.first_mut() {
                let cached = first
                    .unfed_prompt()
                    .filter(|_| self.limits.prefix_cache)
                    .and_then(|p| self.prefixes.lookup(p));
                if let Some(seq) = cached {
                    let reused = seq.len();
                    if first.resume_from(seq).is_ok() {
                        self.metrics.prefix_cache_hits.inc();
                        self.metrics.prefix_tokens_reused.inc_by(reused as u64);
                    }
                }
            }
            let n = job.choices.len();
            self.running.push(Running {
                choices: job.choices.into_iter().map(Some).collect(),
                sent_logprobs: vec![0; n],
                last_token: vec![None; n],
                events: job.events,
                arrived: job.arrived,
                deadline: job.deadline,
                request_id: job.request_id,
            });
        }
    }

    fn dequeued(&self) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
        self.metrics.queue_length.dec();
    }

    /// Free the sequences of clients that went away or ran out of time.
    fn drop_gone(&mut self) {
        let now = Instant::now();
        let metrics = &self.metrics;
        self.running.retain(|r| {
            if r.events.is_closed() {
                debug!(request_id = %r.request_id, "client went away: generation cancelled");
                metrics.cancelled.inc();
                return false;
            }
            if now > r.deadline {
                let _ = r.events.send(Event::Failed(ApiError::timeout(
                    "The generation",
                    (r.deadline - r.arrived).as_secs_f64(),
                )));
                return false;
            }
            true
        });
    }

    /// One forward pass over every active sequence (a chunk of a prompt being prefilled, or
    /// the last token(s) of one being decoded), then one token choice for each sequence whose
    /// pending input is all fed.
    fn step(&mut self) {
        let model = self.model.clone();
        let backend = model.backend();
        let vocab = model.vocabulary();
        // Per request, the choices that feed this pass (further choices wait for the first
        // one's prefill, which they share). A request with none could never progress (a bug,
        // not an input): it fails rather than spins.
        let mut plan: Vec<Vec<usize>> = Vec::with_capacity(self.running.len());
        for r in &mut self.running {
            let mine: Vec<usize> = (0..r.choices.len())
                .filter(|&i| {
                    r.choices[i]
                        .as_ref()
                        .is_some_and(|s| s.has_input() && !(i > 0 && s.needs_prefill()))
                })
                .collect();
            if mine.is_empty() {
                let _ = r.events.send(Event::Failed(ApiError::internal(
                    "the generation has no input to feed",
                )));
                r.choices.iter_mut().for_each(|c| *c = None);
            }
            plan.push(mine);
        }
        plan.retain(|mine| !mine.is_empty());
        self.running.retain(|r| !r.is_done());
        // The logits rows come back in this order: per request, per planned choice.
        let mut feeding: Vec<Vec<(usize, usize)>> = Vec::with_capacity(plan.len());
        let mut inputs = Vec::new();
        for (r, mine) in self.running.iter_mut().zip(&plan) {
            let mut fed = Vec::with_capacity(mine.len());
            for (i, choice) in r.choices.iter_mut().enumerate() {
                if let (true, Some(seq)) = (mine.contains(&i), choice) {
                    let (s, tokens) = seq.input(PREFILL_CHUNK);
                    fed.push((i, tokens.len()));
                    inputs.push((s, tokens));
                }
            }
            feeding.push(fed);
        }
        let batch = inputs.len();
        if batch == 0 {
            return;
        }
        self.metrics.batch_size.observe(batch as f64);
        let started = Instant::now();
        let result = backend.forward_batch(&mut inputs, LogitsRequest::Last);
        drop(inputs);
        let share = started.elapsed() / batch as u32;
        let logits = match result {
            Ok(logits) => logits,
            Err(e) => {
                warn!("forward pass failed: {e}");
                for r in self.running.drain(..) {
                    let _ = r.events.send(Event::Failed(ApiError::internal(format!(
                        "forward pass failed: {e}"
                    ))));
                }
                return;
            }
        };
        let mut rows = logits.into_iter();
        let tokenize = model.tokenize_fn();
        for (r, mine) in self.running.iter_mut().zip(feeding) {
            // Exactly this request's rows, whatever happens to it below.
            let own: Vec<_> = mine.into_iter().zip(rows.by_ref()).collect();
            let mut ready: Vec<(usize, Vec<f32>)> = Vec::new();
            for ((i, n), logits) in own {
                let Some(seq) = r.choices[i].as_mut() else {
                    continue;
                };
                seq.record_forward(share);
                if seq.fed(n) {
                    if let (Some((prompt, state)), true) =
                        (seq.prefilled_prompt(), self.limits.prefix_cache)
                    {
                        self.prefixes.store(prompt, state);
                    }
                    ready.push((i, logits.into_last_row()));
                }
            }
            if let Err(e) = share_prefill(r, &mut ready) {
                let _ = r.events.send(Event::Failed(e));
                r.choices.iter_mut().for_each(|c| *c = None);
                continue;
            }
            for (i, row) in ready {
                if let Err(e) = choose(&self.metrics, r, i, row, vocab, &tokenize) {
                    let _ = r.events.send(Event::Failed(e));
                    r.choices.iter_mut().for_each(|c| *c = None);
                    break;
                }
            }
        }
        self.running.retain(|r| !r.is_done());
    }
}

/// Choice `i` of `r` takes its next token(s) from `row`; its new text and, when it is done,
/// its output go to the client.
fn choose(
    metrics: &Metrics,
    r: &mut Running,
    i: usize,
    row: Vec<f32>,
    vocab: &corral::index::Vocabulary,
    tokenize: &dyn Fn(&str) -> Vec<u32>,
) -> Result<(), ApiError> {
    let Some(seq) = r.choices[i].as_mut() else {
        return Ok(());
    };
    let before = seq.completion_tokens();
    let mut text = String::new();
    seq.step(row, vocab, Some(tokenize), &mut |delta| {
        text.push_str(delta)
    })
    .map_err(ApiError::from_sampler)?;
    let now = Instant::now();
    let new_tokens = seq.completion_tokens() - before;
    if new_tokens > 0 {
        match r.last_token[i] {
            None => metrics
                .time_to_first_token
                .observe((now - r.arrived).as_secs_f64()),
            Some(last) => metrics
                .time_per_output_token
                .observe((now - last).as_secs_f64() / new_tokens as f64),
        }
        r.last_token[i] = Some(now);
    }
    let logprobs = seq.logprobs()[r.sent_logprobs[i]..].to_vec();
    r.sent_logprobs[i] += logprobs.len();
    if !text.is_empty() || !logprobs.is_empty() {
        let _ = r.events.send(Event::Delta {
            choice: i,
            text,
            logprobs,
        });
    }
    if seq.is_done() {
        if let Some(seq) = r.choices[i].take() {
            let mut rest = String::new();
            let output = seq.finish(&mut |delta| rest.push_str(delta));
            if !rest.is_empty() {
                let _ = r.events.send(Event::Delta {
                    choice: i,
                    text: rest,
                    logprobs: Vec::new(),
                });
            }
            metrics
                .completion_tokens
                .inc_by(output.completion_tokens as u64);
            let _ = r.events.send(Event::Done {
                choice: i,
                output: Box::new(output),
            });
        }
    }
    Ok(())
}

/// When choice 0 of `r` has just finished its prefill (it is in `ready`), the other choices
/// fork its sequence — before it takes a token — and choose from copies of its row.
fn share_prefill(r: &mut Running, ready: &mut Vec<(usize, Vec<f32>)>) -> Result<(), ApiError> {
    let Some(row) = ready.iter().find(|(i, _)| *i == 0).map(|(_, row)| row) else {
        return Ok(());
    };
    let (head, tail) = r.choices.split_at_mut(1);
    let Some(first) = head[0].as_ref() else {
        return Ok(());
    };
    let mut shared = Vec::new();
    for (k, choice) in tail.iter_mut().enumerate() {
        if let Some(seq) = choice.as_mut().filter(|s| s.needs_prefill()) {
            seq.share_prefill(first)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            shared.push((k + 1, row.clone()));
        }
    }
    ready.extend(shared);
    Ok(())
}
