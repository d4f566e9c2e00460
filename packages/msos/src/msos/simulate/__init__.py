"""MSOS simulate: a synthetic GBTDS partition as romancal Level-2 files, with its truth.

``msos simulate --out DIR`` writes, for one (season, field, detector):

**Level-2 images** — one romancal ``wfi_image`` (``ImageModel``, rdm 1.2.0 schema
``wfi_image-2.2.0``) per epoch, named like romancal's
``r<visit_id>_<exposure>_<detector>_f146_cal.asdf``: visit id
``PPPPPCCAAASSSOOOVVV`` = program 00001, plan 01, pass = season, segment = day of the
simulation (1-based), observation = field number, visit = exposure of the day (1-based);
exposure 0001. ``data`` float32 DN/s; ``err`` float16 with
``err² = var_poisson + var_rnoise + var_flat`` (the variance of exactly the injected noise);
``dq`` uint32 with romancal bits (:mod:`msos.simulate.noise`); ``meta.wcs`` a gwcs TAN
projection (:mod:`msos.simulate.wcs`) carrying the epoch's true offset; ``meta.exposure``
start/end (UTC), 45.6 s exposure, 42.56 s effective; ``meta.photometry``
(:mod:`msos.simulate.instrument`); ``meta.file_date`` = the exposure's end, so the same
inputs give byte-identical files. Reference-pixel arrays are zeros.

**The truth images** — an epoch's noiseless rate image is its sky plus every star rendered with
the pipeline's own model of the truth ePSF: :func:`msos.psf.model.render_stars`, a cubic
B-spline interpolation of the ``truth_psf.asdf`` stamps (bilinear between grid nodes), with
each star's wings truncated where at most 0.01 DN/s of its flux lies beyond
(``wing_tolerance``, :data:`msos.simulate.scene.WING_TOLERANCE_DN_S`: < 0.08σ of a single sky
pixel's noise, spread over hundreds of pixels). ``sky_dn_s + render_stars(shape, x_pix +
dx_pix, y_pix + dy_pix, flux, EPSFGrid.from_gridded_psf(read_truth_psf(path, epoch),
normalize=True), wing_tolerance=0.01)``, with each star's flux at that epoch, reproduces it to
float32 rounding; PSF photometry with the truth ePSF at the truth positions is unbiased. Noise
and defects are then drawn on it (:mod:`msos.simulate.noise`).

**Truth** (Parquet written with pyarrow; column units in each field's ``unit`` metadata, the
table's metadata as JSON under the schema key ``msos_simulate``; read with
:func:`msos.simulate.write.read_table` or any Parquet reader):

``truth_stars.parquet`` — one row per star, ``truth_id`` = row (stars sorted by y, x):
    ``x_pix, y_pix`` on the reference grid (epoch 0; 0-based, pixel centres at integers),
    ``ra_deg, dec_deg`` (ICRS), ``flux_dn_s`` / ``flux_ujy`` / ``mag_ab`` the baseline flux
    (for microlensing: source + blend at magnification 1; for periodic: the mean / out-of-
    eclipse level), ``on_image`` (centre inside the image on the reference grid; stars within
    16 pixels outside are simulated too), ``kind`` (constant / periodic / microlensing),
    ``model`` ("" / sine / eclipsing / pspl / binary) and the parameters (NaN where unused):
    ``period_d, t_ref_mjd_tdb, amplitude, amplitude2, eclipse_width`` (periodic),
    ``t0_mjd_tdb, u0, te_d, fs`` (microlensing; ``fs`` = source fraction of the baseline
    flux), ``q, s, alpha_deg`` (binary). Light-curve formulae: :mod:`msos.simulate.variability`.
``truth_epochs.parquet`` — one row per epoch: ``epoch, filename, start_utc`` (ISO),
    ``time_mjd_utc, time_mjd_tdb`` (mid-exposure; TDB is a time-scale conversion, no
    barycentric correction), ``dx_pix, dy_pix`` (true offset: a reference-grid position
    ``(x, y)`` is at ``(x + dx, y + dy)`` in this epoch's image and WCS),
    ``psf_jitter_sigma_pix``, ``psf_fwhm_pix`` (ePSF FWHM at the image centre), ``sky_dn_s``,
    ``n_cosmic_ray_pixels, n_saturated_pixels``.
``truth_variable_fluxes.parquet`` — every non-constant star at every epoch (long format,
    sorted by truth_id then epoch): ``truth_id, epoch, time_mjd_tdb, flux_dn_s, flux_ujy,
    relative_flux`` (flux / baseline).
``truth_psf.asdf`` — the true ePSF grid of every epoch in the ``GriddedPSF`` convention of
    ``packages/msos/README.md`` (stamps sum to ``oversampling²``): ``stamps[epoch, n, sy, sx]``
    float32, ``x_pix, y_pix`` (grid nodes, row-major), ``oversampling``,
    ``jitter_sigma_pix[epoch]``, ``fwhm_pix[epoch, n]``;
    :func:`msos.simulate.write.read_truth_psf` returns one epoch as a ``GriddedPSF``.

Kernels (no I/O): :mod:`~msos.simulate.psf` (PSF, ePSF grid), :mod:`~msos.simulate.scene`
(luminosity function, positions, the rendering tolerance), :mod:`~msos.simulate.variability`,
:mod:`~msos.simulate.epochs`, :mod:`~msos.simulate.noise`, :mod:`~msos.simulate.wcs`;
:mod:`~msos.simulate.partition` puts them together; :mod:`~msos.simulate.write` and
:mod:`~msos.simulate.command` write files.
"""
