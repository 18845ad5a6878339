"""One optimisation step, eager or replayed from a CUDA graph, and the weight EMA.

A 9-atom molecule in batches of 5 gives the GPU almost nothing to do per kernel: a MACE training
step (forward, forces by autograd with ``create_graph``, backward through both, AMSGrad, EMA)
launches thousands of small kernels, and the launches, not the arithmetic, set the pace.  Because
every ethanol batch has the same shapes (:class:`~acecourse.training.data.StaticBatches`), the
whole step can be recorded once as a CUDA graph and replayed: the inputs are copied into fixed
("static") tensors, and the optimiser takes its learning rate, and the EMA its decay, from device
tensors so that the scheduler can still change them between replays.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from mace.modules.loss import WeightedEnergyForcesLoss

from acecourse.training.config import TrainConfig
from acecourse.training.model import parameter_groups


class Fields(dict):
    """A batch dict whose fields can also be read as attributes (``batch.ptr``), as mace-torch's
    loss reads them."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@contextlib.contextmanager
def weights_applied(parameters: list, weights: list) -> Iterator[None]:
    """Copy ``weights`` into ``parameters`` (in place) for the block, then restore them."""
    backup = [p.detach().clone() for p in parameters]
    with torch.no_grad():
        for p, w in zip(parameters, weights):
            p.copy_(w)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, b in zip(parameters, backup):
                p.copy_(b)


class EMA:
    """Exponential moving average of parameters, as ``torch_ema`` with ``use_num_updates``.

    ``shadow <- shadow - (1 - d) (shadow - param)`` with ``d = min(decay, (1 + n) / (10 + n))``
    after ``n`` updates.  The decay lives in a device tensor so that the update can be replayed
    from a CUDA graph.
    """

    def __init__(self, parameters, decay: float):
        self.parameters = [p for p in parameters if p.requires_grad]
        self.decay = decay
        self.num_updates = 0
        self.shadow = [p.detach().clone() for p in self.parameters]
        device = self.parameters[0].device
        self.one_minus_decay = torch.zeros((), device=device, dtype=self.parameters[0].dtype)

    def next_decay(self) -> None:
        """Set the decay tensor for the next update and count it."""
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        self.one_minus_decay.fill_(1.0 - d)

    def apply(self) -> None:
        """The update itself (graph-capturable; call :meth:`next_decay` before)."""
        with torch.no_grad():
            diff = torch._foreach_sub(self.shadow, self.parameters)
            torch._foreach_mul_(diff, self.one_minus_decay)
            torch._foreach_sub_(self.shadow, diff)

    def update(self) -> None:
        self.next_decay()
        self.apply()

    def average_parameters(self) -> contextlib.AbstractContextManager:
        """Temporarily copy the averaged weights into the model (in place)."""
        return weights_applied(self.parameters, self.shadow)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay = state["decay"]
        self.num_updates = state["num_updates"]
        with torch.no_grad():
            for s, t in zip(self.shadow, state["shadow"]):
                s.copy_(t)


class StepRunner:
    """Runs training steps; records the step as a CUDA graph when ``use_graph`` is set.

    The loss is mace-torch's ``WeightedEnergyForcesLoss`` (``λE · mean_graphs(w (ΔE/N)²) + λF ·
    mean_components(w ΔF²)``, configuration weights w = 1 here); its weights λE, λF are device
    tensors (the loss's buffers); set them with :meth:`set_loss_weights`.
    The learning rate of every parameter group is a device tensor too (the optimiser must be
    made with ``capturable=True`` for graphs); set it with :meth:`set_lr`.
    """

    def __init__(self, model, optimizer, ema: EMA, clip_grad: float | None, use_graph: bool):
        self.model = model
        self.optimizer = optimizer
        self.ema = ema
        self.clip_grad = clip_grad
        self.use_graph = use_graph
        param = next(model.parameters())
        self.loss = WeightedEnergyForcesLoss(0.0, 0.0).to(device=param.device, dtype=param.dtype)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: dict[str, torch.Tensor] | None = None
        self.static_loss: torch.Tensor | None = None
        self.eager_steps_before_capture = 3
        self.capture_error: str | None = None
        self.lr_tensors = [
            g["lr"] if isinstance(g["lr"], torch.Tensor) else None for g in optimizer.param_groups
        ]

    def set_loss_weights(self, energy_weight: float, forces_weight: float) -> None:
        self.loss.energy_weight.fill_(energy_weight)
        self.loss.forces_weight.fill_(forces_weight)

    def set_lr(self, lr: float) -> None:
        """Set every group's learning rate (in place where it is a device tensor)."""
        for group, tensor in zip(self.optimizer.param_groups, self.lr_tensors):
            if tensor is None:
                group["lr"] = lr
            else:  # a scheduler may have replaced the tensor by a float: put it back
                tensor.fill_(lr)
                group["lr"] = tensor

    def _step_body(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        pred = self.model(batch, training=True, compute_force=True)
        loss = self.loss(Fields(batch), pred)
        loss.backward()
        if self.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad)
        self.optimizer.step()
        self.ema.apply()
        return loss.detach()

    def eager_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.next_decay()
        return self._step_body(batch)

    def _capture(self, batch: dict[str, torch.Tensor]) -> None:
        self.static = {k: v.clone() for k, v in batch.items()}
        self.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_loss = self._step_body(self.static)

    def step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One optimisation step on ``batch``; returns the (detached) loss."""
        graph_fits = self.graph is None or batch["energy"].shape == self.static["energy"].shape
        if not self.use_graph or not graph_fits:  # e.g. the last, smaller batch of an epoch
            return self.eager_step(batch)
        if self.graph is None:
            if self.eager_steps_before_capture > 0:
                # warm-up on a side stream, as torch.cuda.graph requires; these are real steps
                self.eager_steps_before_capture -= 1
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    loss = self.eager_step(batch)
                torch.cuda.current_stream().wait_stream(stream)
                return loss
            try:
                self._capture(batch)
            except RuntimeError as err:  # record, then go on eagerly
                print(f"warning: CUDA graph capture failed ({err}); continuing eagerly", flush=True)
                self.use_graph, self.graph = False, None
                self.capture_error = str(err)
                return self.eager_step(batch)
        with torch.no_grad():
            for key in ("positions", "energy", "forces"):
                self.static[key].copy_(batch[key])
        self.ema.next_decay()
        self.graph.replay()
        return self.static_loss.clone()


def make_step_runner(model, config: TrainConfig, use_graph: bool = False) -> StepRunner:
    """The recipe's training step for ``model`` (already on its device, in its dtype): Adam
    (AMSGrad as ``config`` says) over mace-torch's parameter groups, the weight EMA, and a
    :class:`StepRunner` with stage one's loss weights.  With ``use_graph`` the learning rates are
    device tensors and the optimiser is capturable, so a recorded step sees the scheduler's
    changes."""
    groups = parameter_groups(model, config)
    param = next(model.parameters())
    if use_graph:
        for group in groups:
            group["lr"] = torch.tensor(config.lr, device=param.device, dtype=param.dtype)
    optimizer = torch.optim.Adam(groups, lr=config.lr, amsgrad=config.amsgrad, capturable=use_graph)
    ema = EMA(model.parameters(), decay=config.ema_decay)
    runner = StepRunner(model, optimizer, ema, config.clip_grad, use_graph)
    runner.set_loss_weights(config.energy_weight, config.forces_weight)
    return runner
