"""How a run uses this machine: precision (``precision``), ``torch.compile`` (``compile``) and the
allocator (``allocator``). Nothing is imported here: ``compile`` is read by command-line help.
"""
