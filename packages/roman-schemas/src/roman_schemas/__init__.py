"""Product schemas of the Roman SSC pipelines: typed models written as tagged ASDF objects.

``asdf.open(path)["ssc"]`` returns the product object; :func:`open_product` adds checks and
clear errors. Every MSOS, GDPS and CGI-DM product type is a class in ``roman_schemas.products``.
"""

from importlib.metadata import version as _version

from roman_schemas.errors import (
    ProductError,
    ProductReadError,
    ProductValidationError,
    UnknownProductType,
    WrongProductType,
)
from roman_schemas.io import open_product, read_product, validate_file, write_product
from roman_schemas.product import Product, product_class, registered_products

__version__ = _version("roman-schemas")

__all__ = [
    "Product",
    "ProductError",
    "ProductReadError",
    "ProductValidationError",
    "UnknownProductType",
    "WrongProductType",
    "__version__",
    "open_product",
    "product_class",
    "read_product",
    "registered_products",
    "validate_file",
    "write_product",
]
