"""What the llama.cpp benchmark scripts share: opening a GGUF file with llama-cpp-python the
way both measure it, and timed greedy runs (prefill, then decode steps) after a warm-up."""
import time

import numpy as np
from llama_cpp import Llama


def open_model(path, threads, n_ctx):
    """The model with `threads` threads for prompts and decode steps."""
    return Llama(
        model_path=path,
        n_threads=threads,
        n_threads_batch=threads,
        n_ctx=n_ctx,
        n_batch=512,
        verbose=False,
    )


def greedy_runs(llm, prompt, decode, runs):
    """(prefill tok/s, decode tok/s) of `runs` runs, after one untimed warm-up run."""
    out = []
    for run in range(runs + 1):
        llm.reset()
        t = time.perf_counter()
        llm.eval(prompt)
        prefill_s = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(decode):
            nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            llm.eval([nxt])
        decode_s = time.perf_counter() - t
        if run > 0:
            out.append((len(prompt) / prefill_s, decode / decode_s))
    return out
