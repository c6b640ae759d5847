"""Export: int8 TFLite, TFLM verification, model images for the C kernels, the emlearn random forest.

:mod:`.tflite_graph` reads a ``.tflite`` into a small IR; :mod:`.model_image` lowers it to the model image
the firmware's ``dysan_nn`` interpreter runs (bit-exact with TFLM's reference kernels).
"""
