"""The rules of the GDPS products, beyond what every product obeys (see the parametrized tests).

Per exposure: a spectra location table, decontaminated 2D cutouts, individual 1D spectra and a
2D quality report; per sky tile: combined 1D spectra, a redshift catalog and its report.
"""

from __future__ import annotations

import asdf
import numpy as np
import pytest
from astropy import units as u

from roman_schemas import write_product
from roman_schemas.export import export_table, read_export
from roman_schemas.products.gdps import (
    BANDPASS_UM,
    FLAM,
    CatalogDqa,
    Combined1d,
    Decontaminated2d,
    Dqa2d,
    Individual1d,
    L2Exposure,
    RedshiftCatalog,
    RedshiftCatalogSources,
    RedshiftFlag,
    RedshiftGrid,
    SpectraLocationTable,
    SpectrumDQ,
)
from roman_schemas.tables import Table

GDPS = [
    SpectraLocationTable,
    Decontaminated2d,
    Individual1d,
    Combined1d,
    RedshiftCatalog,
    Dqa2d,
    CatalogDqa,
]


def fields(model):
    """The field values of a product or table, to rebuild it with some changed."""
    return {name: getattr(model, name) for name in type(model).model_fields}


def with_columns(table: Table, **columns) -> Table:
    return type(table)(**{**fields(table), **columns})


def rebuilt(product, **changes):
    return type(product)(**{**fields(product), **changes})


# -- every GDPS product ---------------------------------------------------------------------
@pytest.mark.parametrize("cls", GDPS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("disperser", ["GRISM", "PRISM"])
def test_grism_and_prism_examples_are_valid_small_and_deterministic(cls, disperser, tmp_path):
    product = cls.example(disperser=disperser)
    assert product.meta.optical_element == disperser
    path = write_product(product, tmp_path / "x.asdf")
    assert path.stat().st_size < 400_000
    again = cls.example(disperser=disperser)
    for name in cls.model_fields:
        value = getattr(product, name)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, getattr(again, name))


@pytest.mark.parametrize("cls", GDPS, ids=lambda c: c.__name__)
def test_every_declared_unit_parses_with_astropy(cls):
    def walk(model):
        for field in model.model_fields.values():
            for spec in field.metadata:
                if getattr(spec, "unit", None):
                    u.Unit(spec.unit)  # raises on a unit astropy does not know
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                walk(annotation)

    walk(cls)


@pytest.mark.parametrize("cls", GDPS, ids=lambda c: c.__name__)
def test_gdps_archive_keywords_carry_no_product_or_model_type(cls):
    keywords = cls.example().archive_keywords()
    assert "product_type" not in keywords and "model_type" not in keywords
    assert keywords["optical_element"] in ("GRISM", "PRISM")
    assert keywords["data_release_id"] == ""  # required by rad even outside a data release


def test_spectral_unit_and_range_keywords_come_from_the_model():
    spectra = Individual1d.example()
    keywords = spectra.archive_keywords()
    assert keywords["unit_flux"] == FLAM == "erg / (s cm2 Angstrom)"
    assert keywords["unit_wl"] == "um"
    assert keywords["wl_contamination_range"] == "[1, 1.93]"
    assert keywords["wl_snr_global_range"] == "[1.2, 1.7]"
    assert Decontaminated2d.example().archive_keywords()["unit_flux"] == "DN / s"
    assert keywords["version_g2dp_software"] == "unknown"  # no gdps in software_versions
    spectra.meta.software_versions = {"gdps": "0.3.1"}
    assert spectra.archive_keywords()["version_g2dp_software"] == "0.3.1"


def test_location_keywords_count_sources_and_type_the_dither_as_rad_does():
    table = SpectraLocationTable.example(n_sources=10)
    keywords = table.archive_keywords()
    assert keywords["num_src"] == 10
    assert keywords["dither"] == 2.0 and isinstance(keywords["dither"], float)
    assert keywords["detector"] == "WFI01" and keywords["v3yangle"] == -60.0


def test_the_observation_id_must_name_the_exposure_segment_visit_and_program():
    exposure = Individual1d.example().meta.exposure
    with pytest.raises(ValueError, match="segment"):
        L2Exposure(**{**fields(exposure), "visit": 4})
    with pytest.raises(ValueError, match="pattern"):
        L2Exposure(**{**fields(exposure), "observation_id": "r0000701001001002003"})
    long_form = L2Exposure(**{**fields(exposure), "observation_id": "0000701001001002003010010001"})
    assert long_form.visit == 3
    meta = Individual1d.example().meta
    with pytest.raises(ValueError, match="not in program"):
        type(meta)(**{**fields(meta), "program": 8})


# -- spectra location table -----------------------------------------------------------------
def test_the_location_table_covers_truncated_outside_and_missing_traces():
    table = SpectraLocationTable.example()
    loc = table.locations
    fraction = loc.fraction_on_detector
    assert 0 < fraction[0] < 1  # cut by the detector edge
    assert not (0 <= loc.x_direct_pix[1] < 4088) and loc.on_detector[1]  # source off, trace on
    assert not loc.on_detector[2] and np.isnan(loc.wavelength_min_um[2])  # misses the detector
    assert loc.trace_x_pix.shape == (len(loc), table.trace_wavelengths_um.size)
    assert np.all(np.diff(loc.trace_x_pix, axis=1) > 0)  # wavelength increases along +x


def test_on_detector_must_agree_with_the_fraction_on_detector():
    table = SpectraLocationTable.example()
    flipped = table.locations.on_detector.copy()
    flipped[2] = True
    with pytest.raises(ValueError, match="on_detector"):
        rebuilt(table, locations=with_columns(table.locations, on_detector=flipped))


def test_trace_samples_follow_the_stored_wavelengths():
    table = SpectraLocationTable.example()
    with pytest.raises(ValueError, match="samples per row"):
        rebuilt(table, trace_wavelengths_um=table.trace_wavelengths_um[:-1])
    with pytest.raises(ValueError, match="strictly increasing"):
        rebuilt(table, trace_wavelengths_um=table.trace_wavelengths_um[::-1].copy())
    with pytest.raises(ValueError, match="outside the GRISM band"):
        rebuilt(table, trace_wavelengths_um=table.trace_wavelengths_um + 0.5)


def test_a_source_order_pair_appears_once():
    table = SpectraLocationTable.example()
    ids = table.locations.source_id.copy()
    ids[1] = ids[0]
    with pytest.raises(ValueError, match="appears twice"):
        rebuilt(table, locations=with_columns(table.locations, source_id=ids))


# -- the ragged layout of 2D cutouts and 1D spectra -----------------------------------------
def test_cutouts_tile_the_flat_pixel_and_column_arrays_exactly():
    product = Decontaminated2d.example()
    c = product.cutouts
    sizes = c.ny.astype("int64") * c.nx
    assert c.pixel_offset[0] == 0
    np.testing.assert_array_equal(c.pixel_offset[1:], np.cumsum(sizes)[:-1])
    assert (c.pixel_offset[-1] + sizes[-1]) == product.science_dn_s.size
    np.testing.assert_array_equal(c.column_offset[1:], np.cumsum(c.nx)[:-1])
    assert len(set(zip(c.ny, c.nx, strict=True))) == len(c), "the cutouts differ in size"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda c: {"pixel_offset": c.pixel_offset + np.array([0, 1, 1])}, "row 1 starts at"),
        (lambda c: {"pixel_offset": c.pixel_offset - np.array([0, 1, 1])}, "row 1 starts at"),
        (lambda c: {"ny": c.ny + np.array([0, 0, 1], dtype="int32")}, "blocks cover"),
        (lambda c: {"column_offset": c.column_offset[::-1].copy()}, "column_offset"),
    ],
    ids=["gap", "overlap", "overrun", "order"],
)
def test_offsets_with_a_gap_an_overlap_or_an_overrun_are_refused(damage, message):
    product = Decontaminated2d.example()
    with pytest.raises(ValueError, match=message):
        rebuilt(product, cutouts=with_columns(product.cutouts, **damage(product.cutouts)))


def test_a_flat_array_of_another_length_is_refused():
    product = Decontaminated2d.example()
    with pytest.raises(ValueError, match="differ in shape"):
        rebuilt(product, dq=product.dq[:-1])


def test_a_cutout_reads_back_as_its_2d_image_from_a_lazily_opened_file(tmp_path):
    product = Decontaminated2d.example()
    source = int(product.cutouts.source_id[1])
    expected = product.cutout(source)
    path = write_product(product, tmp_path / "2d.asdf")
    with asdf.open(path) as af:
        opened = af["ssc"]
        assert not isinstance(opened.science_dn_s, np.ndarray)  # still lazy after validation
        cutout = opened.cutout(source)
    assert cutout.science_dn_s.shape == (product.cutouts.ny[1], product.cutouts.nx[1])
    np.testing.assert_array_equal(cutout.science_dn_s, expected.science_dn_s)
    np.testing.assert_array_equal(cutout.wavelength_um, expected.wavelength_um)
    assert np.all(np.diff(cutout.wavelength_um) > 0)
    assert np.all((cutout.trace_y_pix >= 0) & (cutout.trace_y_pix <= cutout.science_dn_s.shape[0]))
    with pytest.raises(KeyError):
        product.cutout(source, order=2)


def test_wavelength_increases_within_each_cutout_but_restarts_between_them():
    product = Decontaminated2d.example()
    wavelength = product.column_wavelength_um
    assert np.any(np.diff(wavelength) < 0), "the next cutout starts blue again"
    start, width = int(product.cutouts.column_offset[1]), int(product.cutouts.nx[1])
    reversed_block = wavelength.copy()
    reversed_block[start : start + width] = wavelength[start : start + width][::-1]
    with pytest.raises(ValueError, match="within every source"):
        rebuilt(product, column_wavelength_um=reversed_block)


def test_cutouts_stay_on_the_detector():
    product = Decontaminated2d.example()
    x0 = product.cutouts.x0_pix.copy()
    x0[2] = 4088 - 10
    with pytest.raises(ValueError, match="beyond the detector"):
        rebuilt(product, cutouts=with_columns(product.cutouts, x0_pix=x0))


def test_individual_spectra_keep_native_sampling_and_tile_the_flat_arrays(tmp_path):
    product = Individual1d.example()
    s = product.spectra
    np.testing.assert_array_equal(s.offset[1:], np.cumsum(s.n_samples)[:-1])
    assert s.offset[-1] + s.n_samples[-1] == product.flux_flam.size
    path = write_product(product, tmp_path / "1d.asdf")
    with asdf.open(path) as af:
        spectrum = af["ssc"].spectrum(int(s.source_id[0]))
    assert spectrum.flux_flam.size == s.n_samples[0]
    lo, hi = BANDPASS_UM["GRISM"]
    assert lo - 0.05 <= spectrum.wavelength_um.min() and spectrum.wavelength_um.max() <= hi + 0.05
    with pytest.raises(ValueError, match=r"spectra\.offset: row 1 starts at"):
        rebuilt(product, spectra=with_columns(s, n_samples=s.n_samples - 1))


def test_spectra_outside_the_disperser_band_are_refused():
    product = Individual1d.example()
    with pytest.raises(ValueError, match="outside the GRISM band"):
        rebuilt(product, wavelength_um=product.wavelength_um * 0.5)


# -- combined spectra -----------------------------------------------------------------------
def test_coverage_never_exceeds_the_spectra_combined():
    product = Combined1d.example()
    s = product.spectra
    assert np.all(s.coverage <= s.n_spectra[:, None])
    assert np.all(s.n_rolls <= s.n_spectra)
    more = s.coverage.copy()
    more[0, 100] = s.n_spectra[0] + 1
    with pytest.raises(ValueError, match="coverage exceeds"):
        rebuilt(product, spectra=with_columns(s, coverage=more))


def test_uncovered_samples_are_nan_and_flagged():
    product = Combined1d.example()
    s = product.spectra
    empty = s.coverage == 0
    assert empty.any()
    assert np.all(np.isnan(s.flux_flam[empty]))
    assert np.all(s.dq[empty] & SpectrumDQ.NO_COVERAGE)
    filled = s.flux_flam.copy()
    filled[empty] = 0.0
    with pytest.raises(ValueError, match="NaN where coverage is 0"):
        rebuilt(product, spectra=with_columns(s, flux_flam=filled))


def test_rolls_and_spectra_are_bounded_by_the_tile_metadata():
    product = Combined1d.example()
    s = product.spectra
    with pytest.raises(ValueError, match="n_rolls"):
        rebuilt(product, spectra=with_columns(s, n_rolls=s.n_spectra + 1))
    meta = product.meta.model_copy(update={"pa_v3_deg": [15.0]})
    with pytest.raises(ValueError, match="roll angles"):
        rebuilt(product, meta=meta)


def test_combined_spectra_share_one_grid():
    product = Combined1d.example()
    with pytest.raises(ValueError, match="samples per row"):
        rebuilt(product, wavelength_um=product.wavelength_um[:-3])


# -- redshift catalog -----------------------------------------------------------------------
def test_pz_integrates_to_one_over_the_z_grid():
    catalog = RedshiftCatalog.example()
    fit = np.isfinite(catalog.sources.z)
    norm = np.trapezoid(catalog.sources.pz, catalog.z_grid, axis=1)
    np.testing.assert_allclose(norm[fit], 1.0, atol=1e-3)
    assert np.all(catalog.sources.pz[~fit] == 0)
    doubled = catalog.sources.pz.copy()
    doubled[0] *= 2
    with pytest.raises(ValueError, match="integrate to 1"):
        rebuilt(catalog, sources=with_columns(catalog.sources, pz=doubled))


def test_the_z_grid_is_stored_once_and_defined_in_the_metadata():
    catalog = RedshiftCatalog.example()
    np.testing.assert_allclose(catalog.z_grid, catalog.meta.redshift_grid.values())
    assert np.all(np.diff(catalog.z_grid) > 0)
    with pytest.raises(ValueError, match="redshift_grid"):
        rebuilt(catalog, z_grid=np.linspace(0, 4, catalog.z_grid.size))
    with pytest.raises(ValueError, match="z_max must exceed z_min"):
        RedshiftGrid(z_min=2.0, z_max=1.0, n_z=10, spacing="linear")


def test_z_is_nan_exactly_where_the_fit_failed():
    catalog = RedshiftCatalog.example()
    s = catalog.sources
    no_fit = (s.flags & RedshiftFlag.NO_FIT) != 0
    assert no_fit.any()
    np.testing.assert_array_equal(np.isnan(s.z), no_fit)
    fit = ~no_fit
    assert np.all((s.z_lo[fit] <= s.z[fit]) & (s.z[fit] <= s.z_hi[fit]))
    with pytest.raises(ValueError, match="NO_FIT"):
        rebuilt(catalog, sources=with_columns(s, flags=np.zeros_like(s.flags)))


def test_line_columns_follow_the_line_list():
    catalog = RedshiftCatalog.example()
    names = [line.name for line in catalog.meta.lines]
    assert "Ha_6565" in names and "OIII_5008" in names
    assert catalog.sources.line_flux.shape == (len(catalog.sources), len(names))
    meta = catalog.meta.model_copy(update={"lines": catalog.meta.lines[:-1]})
    with pytest.raises(ValueError, match="one column per line"):
        rebuilt(catalog, meta=meta)
    ha = names.index("Ha_6565")
    measured = np.isfinite(catalog.sources.line_flux[:, ha])
    z = catalog.sources.z[measured]
    observed = 0.65646 * (1 + z)
    assert np.all((observed >= 1.0) & (observed <= 1.93)), "Hα measured only inside the band"


@pytest.mark.parametrize("suffix", ["parquet", "ecsv"])
def test_the_catalog_round_trips_through_an_export_with_units_and_grid(tmp_path, suffix):
    catalog = RedshiftCatalog.example()
    out = tmp_path / f"catalog.{suffix}"
    assert export_table(catalog, out) == len(catalog.sources)
    columns, _, metadata = read_export(out)
    table = RedshiftCatalogSources.from_export(columns)
    for name in ("source_id", "pz", "line_flux", "flags"):
        np.testing.assert_array_equal(getattr(table, name), getattr(catalog.sources, name))
    grid = RedshiftGrid(**metadata["meta"]["redshift_grid"]).values()
    fit = np.isfinite(table.z)
    np.testing.assert_allclose(np.trapezoid(table.pz, grid, axis=1)[fit], 1.0, atol=1e-3)
    assert [line["name"] for line in metadata["meta"]["lines"]] == [
        line.name for line in catalog.meta.lines
    ]
    if suffix == "parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(out)
        assert schema.field("line_flux").metadata[b"unit"] == b"erg / (s cm2)"
        assert schema.field("ra_deg").metadata[b"unit"] == b"deg"
    else:
        from astropy.table import Table as AstropyTable

        astro = AstropyTable.read(out)
        assert astro["line_ew_rest"].unit == u.Angstrom
        assert astro["mag_ab"].unit == u.Unit("mag(AB)")


# -- quality reports ------------------------------------------------------------------------
def test_the_2d_report_maps_are_binned_over_the_whole_detector():
    report = Dqa2d.example()
    side = -(-4088 // report.map_binning_pix)
    assert report.background_map_dn_s.shape == (side, side)
    assert report.residual_counts.size == report.residual_bin_edges_sigma.size - 1
    with pytest.raises(ValueError, match="bins make"):
        rebuilt(report, map_binning_pix=256)
    assert len(report.sources) == report.summary.n_cutouts


def test_the_catalog_report_success_rates_are_the_counts_ratio():
    report = CatalogDqa.example()
    summary = report.summary
    assert summary.success_rate == pytest.approx(summary.n_redshift / summary.n_sources)
    assert report.z_counts.sum() <= summary.n_redshift
    assert report.line_snr_counts.shape[0] == len(report.meta.lines)
    with pytest.raises(ValueError, match="success_rate"):
        type(summary)(**{**fields(summary), "success_rate": 0.99})
    mags = report.success_by_magnitude
    with pytest.raises(ValueError, match="success_rate"):
        rebuilt(
            report, success_by_magnitude=with_columns(mags, success_rate=mags.success_rate + 0.1)
        )


def test_the_catalog_report_flag_counts_use_the_redshift_flag_vocabulary():
    report = CatalogDqa.example()
    flags = report.flag_counts
    assert {str(name) for name in flags.flag} == {f.name for f in RedshiftFlag if f.value}
    renamed = flags.flag.copy()
    renamed[0] = "NOT_A_FLAG"
    with pytest.raises(ValueError, match="not a RedshiftFlag"):
        rebuilt(report, flag_counts=with_columns(flags, flag=renamed))


def test_the_photoz_comparison_is_optional():
    report = CatalogDqa.example()
    assert report.photoz is not None and 0 <= report.photoz.outlier_fraction <= 1
    assert rebuilt(report, photoz=None).photoz is None
