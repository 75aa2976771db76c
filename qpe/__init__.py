"""qpe: surface rain rate from Meteosat SEVIRI infrared images with deep generative models,
verified against radar."""

__version__ = "0.1.0"
