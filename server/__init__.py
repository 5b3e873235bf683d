"""cloudarcade.server"""
