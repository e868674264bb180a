from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    id: int
    slug: str
    name: str
    price: float


PRODUCTS = (
    Product(1, "teapot", "Cast-iron teapot", 34.50),
    Product(2, "mug", "Stoneware mug", 12.00),
    Product(3, "kettle", "Gooseneck kettle", 49.90),
)
BY_ID = {product.id: product for product in PRODUCTS}
BY_SLUG = {product.slug: product for product in PRODUCTS}
