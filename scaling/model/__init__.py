"""Dense and mixture-of-experts decoders (Flax NNX), their losses, and parameter/FLOP accounting."""
from scaling.model.accounting import ModelCounts, count_model
from scaling.model.build import abstract_model, build_model
from scaling.model.decoder import Decoder, RouterBias
from scaling.model.loss import lm_objective, token_logprobs

__all__ = ["Decoder", "RouterBias", "ModelCounts", "abstract_model", "build_model", "count_model",
           "lm_objective", "token_logprobs"]
