"""hubmem: GPU memory estimates for Hugging Face Hub models from config.json and safetensors headers."""
