"""Train: corpus documents and chunks in; a fine-tuned copy of the active model out.

`finetune` mines in-domain pairs and trains with in-batch negatives.
"""
