from enum import StrEnum


class ArtifactReadFormat(StrEnum):
    CARD = "card"
    CARD_MD = "card_md"
    ONNX = "onnx"
    ONNX_INT8 = "onnx_int8"
    PREPROCESSING = "preprocessing"
    PT2 = "pt2"
    SAVEDMODEL = "savedmodel"
    TFLITE = "tflite"
    TFLITE_INT8 = "tflite_int8"

    def __str__(self) -> str:
        return str(self.value)
