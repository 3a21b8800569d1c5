"""Learning-rate schedule of CLIPSep.

Authors
 * speechbrain-textsep contributors
"""

from speechbrain.nnet.schedulers import LinearWarmupScheduler


class WarmupLinearDecayScheduler(LinearWarmupScheduler):
    """Linear warm-up, linear decay to ``final_scale * lr0``, then constant.

    The CLIPSep schedule: 5k warm-up steps, decay to 0.1x by step 100k. It
    reuses SpeechBrain's :class:`LinearWarmupScheduler` (its ``__call__``,
    checkpoint saving and loading); only the shape of the curve differs.

    Arguments
    ---------
    initial_value : float
        Peak learning rate ``lr0``.
    num_warmup_steps : int
        Steps of linear warm-up from ``lr0 / num_warmup_steps`` to ``lr0``.
    num_decay_steps : int
        Step at which the decay reaches ``final_scale * lr0``.
    final_scale : float
        Final multiplier (0.1).

    Example
    -------
    >>> sched = WarmupLinearDecayScheduler(1.0, 2, 4, 0.1)
    >>> [round(sched.calculate_lr(s), 3) for s in range(6)]
    [0.5, 1.0, 1.0, 0.55, 0.1, 0.1]
    """

    def __init__(
        self, initial_value, num_warmup_steps, num_decay_steps, final_scale=0.1
    ):
        super().__init__(initial_value, num_warmup_steps, num_decay_steps)
        self.final_scale = final_scale

    def calculate_lr(self, current_step):
        """Learning rate at ``current_step`` (0-based, as in the authors' code)."""
        if current_step < self.num_warmup_steps:
            return self.lr0 * (current_step + 1) / self.num_warmup_steps
        if current_step >= self.num_training_steps:
            return self.lr0 * self.final_scale
        span = max(1, self.num_training_steps - self.num_warmup_steps)
        position = (current_step - self.num_warmup_steps) / span
        return self.lr0 * (1 - (1 - self.final_scale) * position)

    def __call__(self, opt):
        """Sets the learning rate of the coming step on ``opt``."""
        current_lr = opt.param_groups[0]["lr"]
        lr = self.calculate_lr(self.current_step)
        for group in opt.param_groups:
            group["lr"] = lr
        self.current_step += 1
        self.current_lr = current_lr
        return current_lr, lr
