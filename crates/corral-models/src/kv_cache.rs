//! The per-sequence KV cache of one attention layer.
//!
//! On the CPU in f32 (the common case) keys and values live in plain vectors laid out
//! token-major, `[positions, kv_heads, head_dim]`: a decode step appends the projection's
//! output row (one copy, or one conversion to f16 — [`KvCacheDtype`]), and the plain-loop
//! attention reads it in place. Elsewhere (another device or dtype) they live in a candle
//! tensor `[kv_heads, capacity, head_dim]`. Both grow by doubling (amortized linear cost), and
//! truncation only moves `len`.

use candle_core::Tensor;

use crate::error::{ModelError, Result};

/// How the CPU path stores cached keys and values (attention itself runs in f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvCacheDtype {
    /// f16 for models with quantized weights (as llama.cpp's default cache), f32 otherwise
    /// (dense models keep the reference computation).
    #[default]
    Auto,
    /// f32: exact, twice the bytes.
    F32,
    /// IEEE f16, rounded to nearest even: half the memory, and half the bytes each decode
    /// step reads (batched decoding reads every sequence's cache once per layer).
    F16,
}

/// Keys or values of one layer of one sequence.
#[derive(Debug, Clone)]
enum Buffer {
    /// On the CPU, `[positions, kv_heads, head_dim]`.
    Host {
        data: HostRows,
        heads: usize,
        dim: usize,
    },
    /// Any other device or dtype: `[kv_heads, capacity, head_dim]`.
    Device(Tensor),
}

#[derive(Debug, Clone, Default)]
struct CacheBuffer {
    data: Option<Buffer>,
    len: usize,
}

impl CacheBuffer {
    /// Appends `x` (`[kv_heads, tokens, head_dim]`) to a tensor buffer and returns a
    /// `[kv_heads, len, head_dim]` view of all valid positions. (Host buffers belong to the
    /// f32 CPU path, which appends rows with [`CacheBuffer::append_rows`].)
    fn append(&mut self, x: &Tensor, max_len: usize) -> Result<Tensor> {
        let (heads, tokens, dim) = x.dims3()?;
        let needed = self.len + tokens;
        let capacity = match &self.data {
            Some(Buffer::Device(d)) => d.dims()[1],
            Some(Buffer::Host { .. }) => {
                return Err(ModelError::InvalidRequest(
                    "KV cache is a host buffer".into(),
                ))
            }
            None => 0,
        };
        if needed > capacity {
            let new_capacity = needed.max(2 * capacity).max(64).min(max_len.max(needed));
            let grown = Tensor::zeros((heads, new_capacity, dim), x.dtype(), x.device())?;
            if let (Some(Buffer::Device(old)), true) = (&self.data, self.len > 0) {
                grown.slice_set(&old.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
            }
            self.data = Some(Buffer::Device(grown));
        }
        let Some(Buffer::Device(data)) = &self.data else {
            return Err(missing());
        };
        data.slice_set(&x.contiguous()?, 1, self.len)?;
        self.len = needed;
        Ok(data.narrow(1, 0, needed)?)
    }

    /// Appends `tokens` token-major rows (`[tokens, kv_heads · head_dim]`) to a host buffer,
    /// converted to its element type.
    fn append_rows(&mut self, rows: &[f32], tokens: usize) -> Result<()> {
        let Some(Buffer::Host { data, heads, dim }) = &mut self.data else {
            return Err(ModelError::InvalidRequest(
                "KV cache is not a host buffer".into(),
            ));
        };
        let width = *heads * *dim;
        if rows.len() != tokens * width {
            return Err(ModelError::InvalidRequest(format!(
                "{} cache values for {tokens} tokens of width {width}",
                rows.len()
            )));
        }
        let kept = self.len * width;
        match data {
            HostRows::F32(data) => {
                data.truncate(kept);
                data.extend_from_slice(rows);
            }
            HostRows::F16(data) => {
                data.truncate(kept);
                data.resize(kept + rows.len(), 0);
                crate::vector_math::to_f16(rows, &mut data[kept..]);
            }
        }
        self.len += tokens;
        Ok(())
    }

    /// The valid host rows `[len, heads, dim]`.
    fn host(&self) -> Option<HostSlice<'_>> {
        match &self.data {
            Some(Buffer::Host { data, heads, dim }) => {
                let n = self.len * heads * dim;
                Some(match data {
                    HostRows::F32(d) => HostSlice::F32(&d[..n]),
                    HostRows::F16(d) => HostSlice::F16(&d[..n]),
                })
            }
            _ => None,
        }
    }

    /// Whether host rows may be appended (a host buffer, or nothing allocated yet).
    fn accepts_rows(&self) -> bool {
        matches!(self.data, None | Some(Buffer::Host { .. }))
    }

    fn deep_clone(&self) -> Result<Self> {
        let data = match &self.data {
            Some(Buffer::Device(d)) => Some(Buffer::Device(d.copy()?)),
            other => other.clone(),
        };
        Ok(Self {
            data,
            len: self.len,
        })
    }
}

/// The elements of a host buffer.
#[derive(Debug, Clone)]
enum HostRows {
    F32(Vec<f32>),
    /// IEEE f16 bit patterns.
    F16(Vec<u16>),
}

/// The valid rows of a host buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HostSlice<'a> {
    F32(&'a [f32]),
    /// IEEE f16 bit patterns.
    F16(&'a [u16]),
}

fn missing() -> ModelError {
    ModelError::InvalidRequest("KV cache buffer missing".into())
}

/// The KV cache of one attention layer of one sequence.
#[derive(Debug, Default)]
pub struct LayerCache {
    k: CacheBuffer,
    v: CacheBuffer,
}

impl LayerCache {
    /// An empty cache (allocated on first use).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.k.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.k.len == 0
    }

    /// Forgets every position after the first `len` (keeps the allocation).
    pub fn truncate(&mut self, len: usize) {
        self.k.len = self.k.len.min(len);
        self.v.len = self.v.len.min(len);
    }

    /// A copy that owns its own buffers.
    pub fn deep_clone(&self) -> Result<Self> {
        Ok(Self {
            k: self.k.deep_clone()?,
            v: self.v.deep_clone()?,
        })
    }

    /// Appends keys and values `[kv_heads, tokens, head_dim]`; returns all valid positions
    /// of each, `[kv_heads, len, head_dim]`.
    pub(crate) fn append(
        &mut self,
        k: &Tensor,
        v: &Tensor,
        max_len: usize,
    ) -> Result<(Tensor, Tensor)> {
        Ok((self.k.append(k, max_len)?, self.v.append(v, max_len)?))
    }

    /// Appends token-major key and value rows (`[tokens, kv_heads · head_dim]`) of a host
    /// cache, allocating one with `heads` × `dim` rows of f16 (`f16`) or f32 if none exists.
    pub(crate) fn append_rows(
        &mut self,
        k: &[f32],
        v: &[f32],
        tokens: usize,
        (heads, dim): (usize, usize),
        f16: bool,
    ) -> Result<()> {
        for buffer in [&mut self.k, &mut self.v] {
            if buffer.data.is_none() {
                let data = match f16 {
                    true => HostRows::F16(Vec::new()),
                    false => HostRows::F32(Vec::new()),
                };
                buffer.data = Some(Buffer::Host { data, heads, dim });
            }
        }
        self.k.append_rows(k, tokens)?;
        self.v.append_rows(v, tokens)
    }

    /// Whether [`LayerCache::append_rows`] applies (the cache is on the host, or empty).
    pub(crate) fn is_host(&self) -> bool {
        self.k.accepts_rows() && self.v.accepts_rows()
    }

    /// The valid keys and values of a host cache, each `[len, kv_heads, head_dim]`.
    pub(crate) fn host_rows(&self) -> Option<(HostSlice<'_>, HostSlice<'_>)> {
        Some((self.k.host()?, self.v.host()?))
    }
}
