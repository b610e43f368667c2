"""What a named runtime allocates from hubmem's architecture and tensor counts (DESIGN.md, runtimes/).

- `hubmem.runtimes.generate`: transformers `generate` (prefill vs decode steps, beams, the legacy cache).
- `hubmem.runtimes.bitsandbytes`, `overhead`: 4-bit storage and dequantized matmuls; CUDA context parts.
- `hubmem.runtimes.sharding`: the weights each tensor-parallel / pipeline-parallel rank loads (vLLM's
  parallel linear layers and vocab-parallel embeddings).
- `hubmem.runtimes.vllm`, `sglang`: the engines' start-up plans (memory budget, profile peak, CUDA graphs,
  paged KV pool by layer kind, blocks, tokens, concurrency, starts or not).
- `hubmem.runtimes.llamacpp`: llama.cpp / Ollama (offload split, KV cache types, compute buffers, host RAM).

Pure: plain data in, integer bytes out.
"""
