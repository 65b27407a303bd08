"""The method itself: model, loss and one training step (``step``); no loop, data or I/O."""
