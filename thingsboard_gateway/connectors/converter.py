"""The public name of the Converter base class, where custom converters have always
imported it from; it lives in conversion/converter.py with the other pure pieces."""
from thingsboard_gateway.conversion.converter import Converter

__all__ = ["Converter"]
