"""What a named runtime allocates from hubmem's architecture and tensor counts (DESIGN.md, runtimes/).

- `hubmem.runtimes.sharding`: the weights each tensor-parallel / pipeline-parallel rank loads (vLLM's
  parallel linear layers and vocab-parallel embeddings).
- `hubmem.runtimes.vllm`: vLLM's V1 start-up plan (memory budget, profile peak, CUDA graphs, paged KV
  pool by layer kind, blocks, tokens, concurrency, starts or not).

Pure: plain data in, integer bytes out.
"""
