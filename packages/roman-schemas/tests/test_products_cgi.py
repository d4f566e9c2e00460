"""The CGI-DM records: what a record of each CGI level must hold, and how FITS becomes a record.

A CGI file stays FITS as CDMS or corgidrp wrote it; its record carries rad's archive keywords
for the file's level (read from the FITS keywords of the same name), the file's checksums,
a per-HDU summary, the visit and the provenance.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import asdf
import numpy as np
import pytest
from astropy.io import fits

from roman_schemas import ProductValidationError, open_product, write_product
from roman_schemas.archive import check_archive_keywords, rad_keyword_names
from roman_schemas.products.cgi import (
    CGI_RECORDS,
    CgiAncillary,
    CgiLevel1,
    CgiLevel2a,
    CgiLevel2b,
    CgiLevel3,
    CgiLevel4,
    CgiRecord,
    example_headers,
    record_class,
)

HEX = "0123456789abcdef" * 4


def build(cls: type[CgiRecord], headers: list[dict], **kwargs) -> CgiRecord:
    """A record of ``headers`` with plausible checksums (as the ingest would pass them)."""
    name = headers[0]["FILENAME"]
    defaults = {
        "size_bytes": 2880 * 10,
        "hdu_sha256": [None] + [HEX] * (len(headers) - 1),
        "inputs": {"parent.fits": HEX} if cls.processed else None,
    }
    return cls.from_fits_header(headers, name, HEX, **(defaults | kwargs))


def fields_of(record: CgiRecord) -> dict:
    """The constructor arguments of ``record`` (to rebuild it with one thing changed)."""
    return {name: getattr(record, name) for name in type(record).model_fields}


# --- the keyword sets are rad's ----------------------------------------------------------


def _rad_groups(schema_id: str) -> set[str]:
    rad_keyword_names(schema_id)  # registers rad's SSC schemas with asdf
    schema = asdf.schema.load_schema(schema_id, resolve_references=False)
    refs = {part["$ref"].rsplit("/", 1)[1] for part in schema["allOf"]}
    return {ref.removesuffix("-1.0.0") for ref in refs} - {"ssc_basic"}


@pytest.mark.parametrize("cls", CGI_RECORDS, ids=lambda c: c.product_type)
def test_each_level_is_made_of_exactly_rads_keyword_groups(cls):
    groups = {group.rad_group for group in cls.keyword_groups().values()}
    assert groups == _rad_groups(cls.rad_schema)


@pytest.mark.parametrize("cls", CGI_RECORDS, ids=lambda c: c.product_type)
def test_each_group_holds_exactly_its_rad_keywords_nullable_where_rad_allows_null(cls):
    for group in cls.keyword_groups().values():
        names, required = rad_keyword_names(group.rad_schema_id())
        schema = asdf.schema.load_schema(group.rad_schema_id(), resolve_references=True)
        archive = {}
        for field in group.model_fields.values():
            archive[field.json_schema_extra["archive"]] = field
        assert set(archive) == names == required, group.__name__
        for keyword, field in archive.items():
            nullable = {"type": "null"} in schema["properties"][keyword].get("anyOf", [])
            assert (not field.is_required()) is nullable, f"{group.__name__}.{keyword}"


@pytest.mark.parametrize("cls", CGI_RECORDS, ids=lambda c: c.product_type)
def test_every_archive_keyword_names_where_it_comes_from_in_the_fits_file(cls):
    record = cls.example()
    sources = cls.fits_sources()
    assert set(sources) == set(record.archive_keywords())
    for keyword, source in sources.items():
        assert source.keyword is not None or source.note, keyword


def test_rads_cgi_keywords_are_the_fits_keywords_themselves_but_one():
    renamed = {}
    for cls in CGI_RECORDS:
        for keyword, source in cls.fits_sources().items():
            if source.keyword is not None and source.keyword != keyword:
                renamed[keyword] = source.keyword
    assert renamed == {"instrument": "INSTRUME", "origin": "ORIGIN", "MJDSTART": "MJDSRT"}


# --- from FITS headers to a record ----------------------------------------------------------


def test_a_record_built_from_a_corgidrp_style_l1_header_carries_its_keyword_values():
    primary, image = example_headers("L1")
    keywords = build(CgiLevel1, [primary, image]).archive_keywords()
    for keyword in ("FSWDVERS", "DETECTOR", "CDMSVERS", "VISITID", "VISTYPE", "OPMODE",
                    "ARRTYPE", "FSMPRFL", "SPAMNAME", "FPAMNAME", "TARGET", "OPGAIN"):  # fmt: skip
        header = primary if keyword in primary else image
        assert keywords[keyword] == header[keyword], keyword
    for keyword in ("EXCAMT", "LOCAMT", "Z2AVG", "Z14AVG", "FPAM_H", "EXPTIME", "EMGAIN_A",
                    "MJDSRT", "MJDEND", "RA", "DEC", "CYCLES", "HVCBIAS"):  # fmt: skip
        header = primary if keyword in primary else image
        assert keywords[keyword] == pytest.approx(header[keyword]), keyword
    # visit id parts are zero-padded strings in FITS, integers in the archive
    assert (keywords["PROGNUM"], keywords["EXECNUM"], keywords["CAMPAIGN"]) == (2000, 1, 1)
    assert (keywords["SEGMENT"], keywords["OBSNUM"], keywords["VISNUM"]) == (1, 1, 1)
    # 0/1 flags are booleans; loop states 0/1 are OPEN/CLOSED
    assert keywords["1SVALID"] is True and keywords["OVEREXP"] is False
    assert keywords["PSFREF"] is False and keywords["ISHOWFSC"] is False
    assert (keywords["FCMLOOP"], keywords["DMZLOOP"]) == ("CLOSED", "CLOSED")
    # FITS times carry no zone: they are UTC
    assert keywords["FTIMEUTC"] == "2027-03-15T01:59:19.200"
    assert keywords["file_date"] == "2027-03-15T03:12:07.415"  # FILETIME
    assert (keywords["instrument"], keywords["origin"]) == ("CGI", "SSC")


def _corgidrp_l1_spec() -> Path:
    """corgidrp's L1 header specification (its mocks are built from it), without importing it."""
    spec = importlib.util.find_spec("corgidrp")
    assert spec is not None and spec.submodule_search_locations, "corgidrp is not installed"
    return Path(spec.submodule_search_locations[0]) / "data" / "header_formats" / "l1.csv"


def _l1_header_from_spec() -> tuple[fits.Header, fits.Header]:
    cast = {"int": int, "float": float, "bool": lambda v: v.upper() in ("TRUE", "1"), "str": str}
    headers = {"Primary Header (HDU 0)": fits.Header(), "Image Header (HDU 1)": fits.Header()}
    with open(_corgidrp_l1_spec(), newline="") as handle:
        for row in csv.DictReader(handle):
            header = headers.get(row["Section"])
            keyword, value = row["Keyword"].strip(), row["Example Value"].strip()
            if header is None or keyword in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND", "XTENSION"):
                continue
            if keyword.startswith(("NAXIS", "PCOUNT", "GCOUNT", "BSCALE", "BZERO")):
                continue
            try:
                header[keyword] = cast[row["Datatype"]](value.strip('"'))
            except ValueError:
                continue  # the spec's prose in a value column (WBJ_n)
    return headers["Primary Header (HDU 0)"], headers["Image Header (HDU 1)"]


def test_a_real_fits_file_following_corgidrps_l1_specification_becomes_a_valid_record(tmp_path):
    primary, image = _l1_header_from_spec()
    frame = (np.arange(24 * 40, dtype="uint32").reshape(24, 40) * 60).astype("uint16")
    path = tmp_path / primary["FILENAME"]
    fits.HDUList([fits.PrimaryHDU(header=primary), fits.ImageHDU(frame, header=image)]).writeto(
        path
    )

    record = CgiLevel1.from_fits_file(path)

    assert record.fits.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record.fits.size_bytes == path.stat().st_size
    stored = fits.getdata(path, 1, do_not_scale_image_data=True)  # int16 - 32768, big-endian
    assert record.hdus.data_sha256[1] == hashlib.sha256(stored.astype(">i2").tobytes()).hexdigest()
    assert record.hdus.data_sha256[0] == ""
    assert (record.hdus.dtype[1], record.hdus.shape_of(1)) == ("uint16", (24, 40))
    keywords = record.archive_keywords()
    for keyword in ("FSWDVERS", "CDMSVERS", "VISITID", "FSMPRFL", "OPMODE", "CFAMNAME"):
        assert keywords[keyword] == (primary.get(keyword) or image.get(keyword)), keyword
    assert keywords["MJDSRT"] == image["MJDSRT"] and keywords["FSMX"] == image["FSMX"]
    check_archive_keywords(keywords, CgiLevel1.rad_schema)
    assert record.visit_files.file_names == [path.name]
    assert record.meta.provenance.parent_files == ["l0_file_name.fits"]  # FILE0


def test_a_record_is_read_back_by_asdf_as_the_same_typed_record(tmp_path):
    record = CgiLevel2a.example()
    path = write_product(record, tmp_path / "record.asdf")
    with open_product(path) as back:
        assert type(back) is CgiLevel2a
        assert back.archive_keywords() == record.archive_keywords()
        assert back.meta.provenance == record.meta.provenance
        assert back.hdus.shape_of(4) == (1024,)  # the BIAS row


def test_the_record_class_of_a_file_follows_its_datalvl():
    for level, cls in [("L1", CgiLevel1), ("L2a", CgiLevel2a), ("L2b", CgiLevel2b),
                       ("L3", CgiLevel3), ("L4", CgiLevel4), ("CAL", CgiAncillary)]:  # fmt: skip
        assert record_class(example_headers(level)) is cls
    assert record_class({"PRIMARY": {}, "": {"DATALVL": "CalibrationProduct"}}) is CgiAncillary
    with pytest.raises(ProductValidationError, match="TDA"):
        record_class([{}, {"DATALVL": "TDA"}])


# --- level rules -------------------------------------------------------------------------


def test_a_level_2a_record_refuses_an_l1_file_and_l1_only_keywords():
    with pytest.raises(ProductValidationError, match="DATALVL is 'L1'"):
        build(CgiLevel2a, example_headers("L1"))
    record = CgiLevel2a.example()
    meta = record.meta.model_dump()
    meta["l1"] = {"cdms_version": "2.1.0"}  # CDMSVERS is rad's cgi_l1: L1 only
    with pytest.raises(ValueError, match="l1"):
        CgiLevel2a(**(fields_of(record) | {"meta": meta}))


@pytest.mark.parametrize(
    "cls, absent",
    [
        (CgiLevel1, {"DRPVERSN", "DESMEAR", "S_REGION", "ANCTYPE"}),
        (CgiLevel2a, {"CDMSVERS", "S_REGION", "DRPNFILE"}),
        (CgiLevel2b, {"CDMSVERS", "DESMEAR", "DRPCTIME", "EXCAMT", "Z2AVG", "S_REGION"}),
        (CgiLevel3, {"EXPTIME", "FTIMEUTC", "EXCAMT", "DESMEAR", "DRPNFILE"}),
        (CgiLevel4, {"VISITID", "EXPTIME", "FPAM_H", "DESMEAR"}),
        (CgiAncillary, {"VISITID", "PROGNUM", "MJDSRT", "DRPVERSN"}),
    ],
    ids=lambda v: v.product_type if isinstance(v, type) else "",
)
def test_a_level_carries_only_its_own_keywords(cls, absent):
    assert not absent & set(cls.example().archive_keywords())


def test_corgidrp_drops_locamt_and_cycles_after_l1_so_an_l2a_record_inherits_them():
    l1 = CgiLevel1.example()
    headers = example_headers("L2a")
    del headers[1]["LOCAMT"], headers[1]["CYCLES"]  # as corgidrp's L2a files are written
    with pytest.raises(ProductValidationError, match=r"LOCAMT \(image HDU\), CYCLES"):
        build(CgiLevel2a, headers)
    record = build(CgiLevel2a, headers, inherited=l1.archive_keywords())
    keywords = record.archive_keywords()
    assert keywords["LOCAMT"] == l1.meta.diagnostic.locam_temp_degc
    assert keywords["CYCLES"] == l1.meta.exposure.excam_clock_cycles
    assert keywords["EXCAMT"] == headers[1]["EXCAMT"]  # the header still wins where it has one


def test_corgidrps_minus_999_and_empty_values_count_as_absent():
    headers = example_headers("L2b")
    headers[1]["FTIMEUTC"] = "-999"  # merge_headers: frames combined, no single frame time
    headers[0]["TARGET"] = ""
    with pytest.raises(ProductValidationError, match="FTIMEUTC"):
        build(CgiLevel2b, headers)
    record = build(CgiLevel2b, headers, overrides={"FTIMEUTC": "2027-03-15T01:59:49"})
    assert record.meta.pointing.target is None
    assert record.meta.exposure.frame_time_utc == datetime(2027, 3, 15, 1, 59, 49, tzinfo=UTC)


def test_unocculted_l4_products_have_null_coronagraphic_keywords():
    headers = example_headers("L4")
    for keyword in ("PSFSUB", "PYKLIPV", "CTCALFN"):
        headers[1][keyword] = ""  # what corgidrp writes when no mask is used
    del headers[0]["KLIP_ALG"]
    keywords = build(CgiLevel4, headers).archive_keywords()
    assert [keywords[k] for k in ("KLIP_ALG", "PSFSUB", "PYKLIPV", "CTCALFN")] == [None] * 4
    check_archive_keywords(keywords, CgiLevel4.rad_schema)
    headers[0]["KLIP_ALG"] = "ADI"
    with pytest.raises(ProductValidationError, match="PSFSUB"):
        build(CgiLevel4, headers)


def test_an_l4_product_is_flux_calibrated_and_polarimetry_names_both_calibrations():
    headers = example_headers("L4")
    headers[1]["FLXCALFN"] = ""
    with pytest.raises(ProductValidationError, match="FLXCALFN"):
        build(CgiLevel4, headers)
    del headers[1]["FLXCALFN"]
    headers[1] |= {"FLXCLF0": "a_abf_cal.fits", "FLXCLF45": "b_abf_cal.fits"}
    assert build(CgiLevel4, headers).meta.l4.flux_cal_file == "a_abf_cal.fits,b_abf_cal.fits"


def test_the_footprint_of_l3_and_l4_comes_from_the_image_wcs():
    record = CgiLevel3.example()
    polygon = record.meta.region.s_region.split()
    assert polygon[:2] == ["POLYGON", "ICRS"] and len(polygon) == 2 + 8
    ra, dec = np.array(polygon[2::2], float), np.array(polygon[3::2], float)
    image = example_headers("L3")[1]
    half_width = 512 * 6.0556e-6
    assert np.allclose(dec, image["CRVAL2"], atol=1.01 * half_width)
    assert np.ptp(dec) == pytest.approx(2 * half_width, rel=0.01)
    assert np.all(np.abs(ra - image["CRVAL1"]) < 1.1 * half_width / np.cos(np.radians(18.9)))
    headers = example_headers("L3")
    headers[1] |= {"CD1_1": 0.0, "CD2_2": 0.0}  # corgidrp's mocks: a singular CD matrix
    with pytest.raises(ProductValidationError, match="S_REGION"):
        build(CgiLevel3, headers)
    given = "POLYGON ICRS 1 1 2 1 2 2 1 2"
    assert build(CgiLevel3, headers, overrides={"S_REGION": given}).meta.region.s_region == given


def test_an_ancillary_type_is_corgidrps_calibration_suffix():
    assert CgiAncillary.example().meta.ancillary.ancillary_type == "drk"  # DATATYPE Dark
    headers = example_headers("CAL")
    del headers[1]["DATATYPE"]
    headers[0]["FILENAME"] = "cgi_0200001001001001001_20270315t0158492_krn_cal.fits"
    assert build(CgiAncillary, headers).meta.ancillary.ancillary_type == "krn"
    headers[0]["FILENAME"] = "DetectorParams_61479.0.fits"  # a corgidrp type without a suffix
    with pytest.raises(ProductValidationError, match="ANCTYPE"):
        build(CgiAncillary, headers)
    assert (
        build(CgiAncillary, headers, overrides={"ANCTYPE": "dtp"}).archive_keywords()["ANCTYPE"]
        == "dtp"
    )


def test_rads_visit_types_are_the_only_ones_accepted():
    headers = example_headers("L1")
    headers[0]["VISTYPE"] = "CGIVST_CAL_TPUMP"  # corgidrp's trap-pump mocks use it; rad lacks it
    with pytest.raises(ProductValidationError, match="visit_type"):
        build(CgiLevel1, headers)


# --- checksums, times, visits, provenance -----------------------------------------------------


@pytest.mark.parametrize("sha", ["", "ABCDEF" * 10 + "ABCD", HEX[:-1], HEX + "0", "g" * 64])
def test_the_file_checksum_is_required_and_a_lowercase_hex_sha256(sha):
    with pytest.raises(ProductValidationError, match="sha256"):
        CgiLevel1.from_fits_header(
            example_headers("L1"), "f.fits", sha, size_bytes=2880, hdu_sha256=[None, HEX]
        )


def test_every_hdu_with_data_has_its_data_checksum_and_only_those():
    with pytest.raises(ProductValidationError, match="HDU 1: data_sha256"):
        build(CgiLevel1, example_headers("L1"), hdu_sha256=[None, None])
    with pytest.raises(ProductValidationError, match="HDU 0 has no data"):
        build(CgiLevel1, example_headers("L1"), hdu_sha256=[HEX, HEX])
    with pytest.raises(ProductValidationError, match="1 HDU checksums for 2 HDUs"):
        build(CgiLevel1, example_headers("L1"), hdu_sha256=[None])


def test_a_fits_file_is_a_whole_number_of_2880_byte_blocks():
    with pytest.raises(ProductValidationError, match="multiple of 2880"):
        build(CgiLevel1, example_headers("L1"), size_bytes=2881)


def test_the_record_names_a_fits_file():
    with pytest.raises(ProductValidationError, match="file_name"):
        CgiLevel1.from_fits_header(
            example_headers("L1"), "dir/f.asdf", HEX, size_bytes=2880, hdu_sha256=[None, HEX]
        )


@pytest.mark.parametrize(
    "level, cls, change, message",
    [
        ("L1", CgiLevel1, {"MJDEND": 61479.0}, "after MJDEND"),
        ("L1", CgiLevel1, {"EXPTIME": 31.0}, "exceeds MJDSRT..MJDEND"),
        ("CAL", CgiAncillary, {"MJDEND": 61479.0}, "MJDSTART .* is after MJDEND"),
        ("L1", CgiLevel1, {"FTIMEUTC": "yesterday"}, "frame_time_utc"),
    ],
)
def test_times_are_consistent(level, cls, change, message):
    headers = example_headers(level)
    headers[1] |= change
    with pytest.raises(ProductValidationError, match=message):
        build(cls, headers)


def test_the_visit_id_is_its_program_execution_campaign_segment_observation_and_visit():
    headers = example_headers("L1")
    headers[0]["OBSNUM"] = "002"
    with pytest.raises(ProductValidationError, match="VISITID 0200001001001001001 disagrees"):
        build(CgiLevel1, headers)


def test_a_record_lists_its_visits_files_itself_included():
    headers = example_headers("L2b")
    name = headers[0]["FILENAME"]
    record = build(CgiLevel2b, headers, visit_files=[name, "other_l2b.fits"])
    assert record.visit_files.visit_id == headers[0]["VISITID"]
    with pytest.raises(ProductValidationError, match="does not list the record's own file"):
        build(CgiLevel2b, headers, visit_files=["other_l2b.fits"])
    with pytest.raises(ProductValidationError, match="repeat"):
        build(CgiLevel2b, headers, visit_files=[name, name])


def test_a_processed_record_names_corgidrp_its_recipes_and_its_checksummed_inputs():
    record = CgiLevel2a.example()
    provenance = record.meta.provenance
    assert provenance.corgidrp_version == record.meta.hldp.drp_version == "5.1.1"
    assert provenance.recipes[0].name == "l1_to_l2a_basic"
    assert provenance.recipes[0].steps[0] == "prescan_biassub"
    assert [i.uri for i in provenance.inputs] == [
        "cgi_0200001001001001001_20270315t0158492_l1_.fits"
    ]
    with pytest.raises(ProductValidationError, match="inputs with their sha256"):
        build(CgiLevel2a, example_headers("L2a"), inputs=None)
    with pytest.raises(ProductValidationError, match="sha256"):
        build(CgiLevel2a, example_headers("L2a"), inputs={"parent.fits": "not-a-checksum"})
    meta = record.meta.model_dump()
    meta["provenance"]["corgidrp_version"] = "5.0.0"
    with pytest.raises(ValueError, match="DRPVERSN"):
        CgiLevel2a(**(fields_of(record) | {"meta": meta}))


def test_the_chain_of_recipes_is_kept_oldest_first():
    headers = example_headers("L2b")
    headers[1] |= {
        "NRECIPES": 2,
        "RECIPE": '{"name": "l1_to_l2a_basic", "steps": [{"name": "prescan_biassub"}]}',
        "RECIPE2": '{"name": "l2a_to_l2b", "steps": [{"name": "dark_subtraction"}]}',
    }
    recipes = build(CgiLevel2b, headers).meta.provenance.recipes
    assert [(r.name, r.steps) for r in recipes] == [
        ("l1_to_l2a_basic", ["prescan_biassub"]),
        ("l2a_to_l2b", ["dark_subtraction"]),
    ]


def test_an_l1_record_needs_no_corgidrp():
    record = build(CgiLevel1, example_headers("L1"))
    assert record.meta.provenance.corgidrp_version is None
    assert record.meta.provenance.recipes == []


def test_unknown_overrides_are_refused():
    with pytest.raises(ProductValidationError, match="DRPNFILE"):
        build(CgiLevel1, example_headers("L1"), overrides={"DRPNFILE": 3})
