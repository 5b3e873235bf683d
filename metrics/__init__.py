"""cloudarcade.metrics"""
