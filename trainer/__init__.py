"""Training stage: base model resolution, LoRA/QLoRA fine-tuning (``twin train``)."""
