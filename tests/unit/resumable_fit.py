"""Two epochs of fine-tuning with lesson 6's callbacks and a :class:`training.TrainingCheckpoint`,
as a process a test can interrupt (test_training_checkpoint.py starts it, signals it, reruns it):

    python resumable_fit.py --artifacts DIR --every 2 --result FILE.npz [--pause 0.5]

The real bundled encoder cut to one layer, with dropout on (0.1 in the encoder, 0.2 in the head:
the masks are part of what a resume must reproduce), 48 synthetic comments of at most 32 tokens
in length-bucketed batches of 8 (6 steps an epoch), a warm-up + linear-decay schedule, and the
callbacks lesson 6 fits with (validation scores, early stopping, step log, progress bar).
``--pause`` sleeps after every step (a callback that changes no number) so a test has time to
signal the process mid-fit. Writes the final weights, the validation probabilities of each epoch,
the history and the step log to ``--result``, and where the fit resumed from.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT))

SEED = 11
EPOCHS = 2
BATCH_SIZE = 8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--every", type=int, required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds to sleep after each step")
    args = parser.parse_args(argv)

    import numpy as np

    from distributed_steps import training_rows
    from toxhelpers import batches, model, pretrained, training
    from toxhelpers.tf_setup import tf_keras

    class Pause(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(args.pause)

    training.seed_everything(SEED)
    checkpoint = pretrained.resolve_checkpoint(pretrained.BUNDLED, announce=False)
    config = pretrained.encoder_config(checkpoint, 0.1, 0.1)
    config.num_hidden_layers = 1
    encoder = pretrained.load_encoder(checkpoint, config)
    encoded, labels = training_rows(pretrained.load_tokenizer(checkpoint))
    head = model.build_head(encoder.config.hidden_size, [16], dropout=0.2, seed=SEED)
    classifier = model.build_classifier(encoder, head, "cls")
    model.set_encoder_trainable(encoder, True)
    steps = batches.batches_per_epoch(encoded, BATCH_SIZE, "bucketed")
    model.compile_model(classifier, learning_rate=training.learning_rate_schedule(1e-4, steps * EPOCHS, "linear", 0.25))

    training.seed_everything(SEED)
    data = batches.training_dataset(encoded, labels, BATCH_SIZE, "bucketed", SEED)
    validation = training.ValidationScores(encoded, labels)
    step_log = training.StepLog()
    resume = training.TrainingCheckpoint(args.artifacts, "finetuning", data, every=args.every)
    fit = classifier.fit(data, epochs=EPOCHS, steps_per_epoch=steps, verbose=0,
                         callbacks=[validation, training.early_stopping(1), step_log, Pause(),
                                    training.ProgressBar(steps), resume])

    history = training.history_frame(fit)
    np.savez(args.result, weights=np.concatenate([np.ravel(weight) for weight in classifier.get_weights()]),
             probabilities=np.stack([validation.probabilities[epoch] for epoch in sorted(validation.probabilities)]),
             history=history.to_numpy(), history_columns=np.array([str(name) for name in history.columns]),
             step_log=step_log.frame().reset_index().to_numpy(),
             resumed_from=np.array([-1, -1] if resume.resumed_from is None else
                                   [resume.resumed_from["epoch"], resume.resumed_from["step"]]),
             checkpoint_left=resume.folder.exists())
    return 0


if __name__ == "__main__":
    sys.exit(main())
