"""cloudarcade.bench"""
