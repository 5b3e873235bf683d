"""cloudarcade.encoder"""
