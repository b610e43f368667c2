"""GGUF (llama.cpp's file format): header parsing (`reader`), GGUF keys and tensor infos -> the same
`Architecture` and counts the safetensors path uses (`arch`), files of a repo grouped into models (`files`)."""
