"""CycleGAN's history of generated images (Shrivastava et al. 2017; Zhu et al. 2017, ``util/image_pool.py``).

The discriminator is shown a mix of the generator's newest images and older ones, so it does not forget what the
generator used to produce and the two stop chasing each other in circles. Per image of a batch: while the pool is not
full the image is stored and returned; once full, with probability one half a stored image (chosen uniformly) is
returned and the new one stored in its place, otherwise the new image is returned and the pool left as it is.

The draws come from the pool's own seeded ``torch.Generator`` (on the CPU), so a pool changes no other random stream
and its state (:meth:`ImagePool.state_dict`: tensors only) makes a resumed run continue bit for bit.

Example:
    >>> pool = ImagePool(capacity=2, seed=0)
    >>> pool(torch.zeros(2, 1, 4, 4)).shape, len(pool)  # not full yet: stored and returned as they are
    (torch.Size([2, 1, 4, 4]), 2)
    >>> bool((pool(torch.ones(8, 1, 4, 4)) == 0).any())  # full: some of the old images come back
    True
"""

from __future__ import annotations

import torch

__all__ = ["ImagePool"]


class ImagePool:
    """A history buffer of up to ``capacity`` generated images (CycleGAN's is 50 per discriminator).

    Args:
        capacity: images kept; 0: no pool (every batch is returned as it is and nothing is drawn).
        seed: seed of the pool's own random generator.

    Shape:
        - Input: :math:`(B, C, H, W)` images (the pool keeps detached copies).
        - Output: :math:`(B, C, H, W)`, on the input's device and of its dtype.
    """

    def __init__(self, capacity: int = 50, seed: int = 0) -> None:
        if capacity < 0:
            raise ValueError(f"ImagePool needs capacity >= 0, got {capacity}")
        self.capacity = capacity
        self.images: list[torch.Tensor] = []  # each (C, H, W)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.query(images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """The images the discriminator sees for this batch of new ``images`` (and the pool updated with them)."""
        if self.capacity == 0:
            return images
        if images.ndim != 4:
            raise ValueError(f"ImagePool takes (B, C, H, W) images, got shape {tuple(images.shape)}")
        images = images.detach()
        out = []
        for image in images:  # (C, H, W)
            if len(self.images) < self.capacity:
                self.images.append(image.clone())  # (a copy: a view would keep the whole batch alive)
                out.append(image)
            elif float(torch.rand((), generator=self.generator)) > 0.5:
                k = int(torch.randint(self.capacity, (), generator=self.generator))
                out.append(self.images[k].to(device=image.device, dtype=image.dtype))
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only (loadable with ``weights_only=True``): the stored images stacked (N, C, H, W) on the CPU (an
        empty tensor when none), their count, and the random generator's state (uint8).

        (On the CPU: after a resume on a GPU the pool holds the checkpoint's CPU images next to new GPU ones.)"""
        stacked = torch.stack([image.cpu() for image in self.images]) if self.images else torch.empty(0)
        return {"images": stacked, "count": torch.tensor(len(self.images)), "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from a :meth:`state_dict`: the same images in the same places, the same draws to come.

        Raises:
            ValueError: a state holding more images than the pool's capacity, or an inconsistent count.
        """
        count = int(state["count"])
        if count > self.capacity or (count and state["images"].shape[0] != count):
            raise ValueError(f"ImagePool state holds {count} images ({tuple(state['images'].shape)}), capacity "
                             f"{self.capacity}")  # fmt: skip
        self.images = list(state["images"].unbind(0)) if count else []
        self.generator.set_state(state["rng"].to(torch.uint8).cpu())
