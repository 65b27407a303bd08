"""Worker for test_ddp_gloo_matches_single_process (run by torch.distributed.run with 2 processes).

Each rank takes its half of a fixed global batch of views, forms pairs locally, and
back-propagates through DistributedDataParallel; rank 0 then recomputes the same
step in one process (each half separately, losses averaged) and saves both.
"""

import copy
import sys

import torch
import torch.distributed as dist

from rr_zoo.models import build_backbone
from rr_zoo.relation import RelationHead
from training.method.step import RelationalModel, relation_loss
from training.pretrain.recipes import recipe_for_entry


def main(out: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    recipe = recipe_for_entry("rr_conv4_cifar10", k=3, batch_size=8)
    torch.manual_seed(0)
    model = RelationalModel(build_backbone("conv4"), RelationHead(128))
    reference = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(1)
    m = recipe.batch_size // world
    views = [torch.randn(recipe.k, m, 3, 32, 32, generator=gen) for _ in range(world)]  # per-rank, view-major
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    loss, _ = relation_loss(ddp, views[rank].flatten(0, 1), recipe)
    loss.backward()
    total = loss.detach().clone()
    dist.all_reduce(total)
    if rank == 0:
        grads = {k: p.grad for k, p in model.named_parameters()}
        torch.save({"loss": total.item() / world, "grads": grads}, f"{out}/ddp.pt")
        losses = [relation_loss(reference, v.flatten(0, 1), recipe)[0] for v in views]
        ref_loss = sum(losses) / world
        ref_loss.backward()
        ref = {k: p.grad for k, p in reference.named_parameters()}
        torch.save({"loss": ref_loss.item(), "grads": ref}, f"{out}/single.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
