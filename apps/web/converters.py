"""URL converter for database ids, registered as ``<id:...>``.

Django's ``int`` converter accepts any number of digits, and an id past
64 bits overflows the database driver (a 500). Ids here are BigAutoField
values, so 18 digits is every id there can be; a longer number matches no
URL at all (404)."""
from django.urls import register_converter


class IdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")
