"""What a named runtime allocates from the model's terms (llama.cpp / Ollama: `llamacpp`)."""
