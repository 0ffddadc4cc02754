"""Figures without pyplot: drawing a plot to a file never switches the caller's
matplotlib backend (a notebook keeps showing its inline plots)."""


def figure(nrows=1, ncols=1, figsize=(6.4, 4.8), dpi=100, **subplot_kw):
    """A `matplotlib.figure.Figure` on an Agg canvas and its axes (as
    `matplotlib.pyplot.subplots` returns them); save it with ``fig.savefig(path)``."""
    # Imported here, not with diffhw: matplotlib takes ~1 s to import and most
    # evaluations never draw.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **subplot_kw)
