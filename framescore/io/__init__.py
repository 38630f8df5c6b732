"""Reading media: videos with PyAV, images with Pillow."""
