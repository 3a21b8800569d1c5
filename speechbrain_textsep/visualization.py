"""Spectrogram figures of mixtures, references and estimates.

Authors
 * speechbrain-textsep contributors
"""

import os

import torch


def plot_spectrograms(signals, sample_rate, path, n_fft=1024, hop_length=256):
    """Saves a PNG with one log-magnitude spectrogram panel per signal.

    Arguments
    ---------
    signals : dict
        Panel title -> 1-D waveform (tensor or array).
    sample_rate : int
        Sample rate of every signal.
    path : str
        Output PNG path (folders are created).
    n_fft : int
        FFT size of the display STFT.
    hop_length : int
        Hop of the display STFT.

    Returns
    -------
    str
        ``path``.

    Example
    -------
    >>> import tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "fig.png")
    >>> _ = plot_spectrograms({"noise": torch.randn(8000)}, 16000, out)
    >>> os.path.getsize(out) > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = torch.hann_window(n_fft)
    fig, axes = plt.subplots(
        len(signals), 1, figsize=(10, 2.6 * len(signals)), sharex=True, squeeze=False
    )
    for ax, (title, wav) in zip(axes[:, 0], signals.items()):
        wav = torch.as_tensor(wav, dtype=torch.float32).reshape(-1)
        spec = torch.stft(wav, n_fft, hop_length, window=window, return_complex=True)
        db = 20 * torch.log10(spec.abs() + 1e-5)
        extent = [0, wav.shape[-1] / sample_rate, 0, sample_rate / 2000]
        image = ax.imshow(
            db.numpy(),
            origin="lower",
            aspect="auto",
            extent=extent,
            vmin=float(db.max()) - 80,
            vmax=float(db.max()),
            cmap="magma",
        )
        ax.set_title(title)
        ax.set_ylabel("kHz")
        fig.colorbar(image, ax=ax, label="dB")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
