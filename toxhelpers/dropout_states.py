"""Dropout whose random state a checkpoint can save (tf-keras): :class:`DropoutStates`, which
:class:`toxhelpers.checkpointing.TrainingCheckpoint` attaches to a model for the length of a fit,
so that a resumed fit draws the very masks an uninterrupted one draws. Keras 3 needs none of it:
its dropout layers keep their random state in variables (:mod:`toxhelpers.keras3`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toxhelpers.tf_setup import tf_keras


class DropoutStates:
    """Dropout whose random state a checkpoint can save, drawing the very masks Keras draws.

    A Keras ``Dropout`` layer (random generator "legacy_stateful", Keras's default) draws its mask
    with TensorFlow's ``RandomUniform`` op. The op's Philox generator starts at key = the global
    seed, counter = (0, the op's seed: its number among the traced function's random ops, or the
    layer's own seed) and lives inside the op's kernel, which advances its counter by 256 for each
    number drawn; no checkpoint can read or set it. For the length of a fit, :meth:`attach` has
    each such layer draw instead from a ``tf.random.Generator`` set, when the training step is
    traced, to that same starting state: its ``StatefulUniform`` op advances the counter by the
    same amount and fills the mask with the same Philox numbers, so the masks, and every number of
    the fit, are those of a fit without it (tests compare them bit for bit). Its state is a
    variable, saved with the checkpoint and put back on a resume. A layer that already draws from
    a ``tf.random.Generator`` (Keras's "stateful") keeps it, its state saved; a "stateless" one
    has no state to save. The generators are made before the fit (a ``tf.function`` may not make
    variables when it traces again), one per layer: a layer used twice in one step is refused.
    """

    def __init__(self) -> None:
        self.generators: dict[str, Any] = {}  # "<layer>" (a legacy layer's) or "<layer>.own" -> generator
        self._own: list[tuple[Any, Any]] = []  # (layer, its own random generator), to give back
        self._restored: dict[str, np.ndarray] | None = None  # states to start the step's traces from
        self._calls: Any = None  # per traced graph: the layers that drew in it
        self._stepped = False  # a traced step has run: tracing again would reset states in use

    def attach(self, model: tf_keras.Model) -> None:
        import weakref

        from tf_keras.src.backend import RandomGenerator  # Keras's layer-level RNG (not exported)

        from toxhelpers.tf_setup import tf

        self.generators, self._calls, self._stepped = {}, weakref.WeakKeyDictionary(), False
        random_layers = [layer for layer in model.submodules  # a fixed order: tf.Module walks attributes by name
                         if isinstance(getattr(layer, "_random_generator", None), (RandomGenerator, _SavedDropout))]
        for index, layer in enumerate(random_layers):
            own = layer._random_generator
            if isinstance(own, _SavedDropout):  # left by a fit that was interrupted in this process
                own = layer._random_generator = own.own
            if own._rng_type == RandomGenerator.RNG_STATEFUL:
                own._maybe_init()
                self.generators[f"{index}.own"] = own._generator
            elif own._rng_type == RandomGenerator.RNG_LEGACY_STATEFUL:
                self._own.append((layer, own))
                layer._random_generator = _SavedDropout(own, self, str(index))
                self.generators[str(index)] = tf.random.Generator.from_state(np.zeros(3, np.int64), alg="philox")

    def generator(self, layer: str, seeds: tuple[int | None, int | None]) -> Any:
        """Layer ``layer``'s generator, set (outside the trace being built, with ``init_scope``)
        to the state the legacy op of this trace would start at, or to the checkpoint's state when
        resuming. Each trace sets it again, as each trace gets fresh ops: Keras traces a fit's step
        once or twice (a first trace that makes variables is traced again) before it runs."""
        from tensorflow.python.framework import ops

        from toxhelpers.tf_setup import tf

        drawn = self._calls.setdefault(ops.get_default_graph(), set())
        if layer in drawn:
            raise ValueError("TrainingCheckpoint: a dropout layer is called twice in one training step; its masks "
                             "cannot be saved (fit with checkpoint every=0)")
        if self._stepped:
            raise ValueError("TrainingCheckpoint: the training step was traced again after it ran (another input "
                             "signature?), which would restart the dropout masks in use (fit with every=0)")
        drawn.add(layer)
        if self._restored is not None and layer not in self._restored:
            raise ValueError(f"dropout layer {layer} of this model has no state in the checkpoint: it was saved by "
                             "another model")
        generator = self.generators[layer]
        with tf.init_scope():
            if self._restored is not None:
                generator.reset(self._restored[layer])
            elif seeds[0] is None:  # no global seed: the legacy op starts from a random state too
                generator.reset_from_seed(int(np.random.SeedSequence().generate_state(1)[0]))
            else:  # Philox state [counter low, counter high, key]
                generator.reset(np.array([0, seeds[1], seeds[0]], np.int64))
        return generator

    def states(self) -> dict[str, np.ndarray]:
        return {name: generator.state.numpy() for name, generator in self.generators.items()}

    def restore(self, states: dict[str, np.ndarray]) -> None:
        """Start the step's traces from a checkpoint's states (a "stateful" layer's own generator
        at once)."""
        different = sorted(set(states) ^ set(self.generators))
        if different:
            raise ValueError(f"the checkpoint's dropout states ({', '.join(sorted(states))}) are not this model's "
                             f"random layers ({', '.join(sorted(self.generators))}): it was saved by another model")
        for name, state in states.items():
            if name.endswith(".own"):
                self.generators[name].reset(state)
        self._restored = {name: state for name, state in states.items() if not name.endswith(".own")}

    def stepped(self) -> None:
        """A traced step has run: the states now move on (and are not set again)."""
        self._stepped, self._restored = True, None

    def detach(self) -> None:
        for layer, own in self._own:
            layer._random_generator = own
        self._own = []


OTHER_DRAWS = ("random_normal", "random_uniform", "truncated_normal")  # Keras's other layer-level draws


class _SavedDropout:
    """Stands in for a layer's own "legacy_stateful" random generator during a fit (see
    :class:`DropoutStates`); anything but ``dropout`` is the layer's own."""

    def __init__(self, own: Any, states: DropoutStates, layer: str):
        self.own, self.states, self.layer = own, states, layer

    def __getattr__(self, name: str) -> Any:  # only for what the instance lacks
        if name.startswith("__") or name in ("own", "states", "layer"):  # copy, pickle: before __init__
            raise AttributeError(name)
        if name in OTHER_DRAWS:  # their state would be left out of the checkpoint: a resume would differ
            raise ValueError(f"TrainingCheckpoint saves the random state of dropout only; a layer of this model "
                             f"draws with {name} (e.g. GaussianNoise): fit it with checkpoint every=0")
        return getattr(self.own, name)

    def dropout(self, inputs: Any, rate: float, noise_shape: Any = None) -> Any:
        from tensorflow.python.framework import random_seed

        from toxhelpers.tf_setup import tf

        # the seeds the legacy op would take, taken the same way (the graph's op-seed count moves on alike)
        seeds = random_seed.get_seed(self.own.make_legacy_seed())
        generator = self.states.generator(self.layer, seeds)
        return tf.nn.experimental.general_dropout(inputs, rate=rate, uniform_sampler=generator.uniform,
                                                  noise_shape=noise_shape)
