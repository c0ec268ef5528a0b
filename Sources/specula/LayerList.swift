import ArgumentParser
import SpeculaKernels
import SpeculaModels

/// Layer numbers from `--draft-skip-layers` (or `bench model --skip-layers`): comma-separated numbers and ranges,
/// `20`, `18-21`, `2,5,9-11` (0-based). Whether each exists is checked against the model once it is read.
func parseLayerList(_ text: String, option: String = "--draft-skip-layers") throws -> Set<Int> {
    var layers = Set<Int>()
    for part in text.split(separator: ",", omittingEmptySubsequences: false) {
        let item = part.trimmingCharacters(in: .whitespaces)
        let bounds = item.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(bounds.count), let low = Int(bounds[0]), let high = Int(bounds[bounds.count - 1]),
            low >= 0, low <= high, high < 1 << 16
        else {
            throw ValidationError(
                "\(option): '\(item)' is not a layer number or a range like 18-21 (0-based, ascending)")
        }
        layers.formUnion(low...high)
    }
    return layers
}

/// Leaves the layers `list` names out of `model`'s passes; a layer it does not have is a one-line error naming
/// `option`.
func skipLayers(of model: Transformer, _ list: String, option: String = "--draft-skip-layers") throws {
    do { try model.skipLayers(parseLayerList(list, option: option)) } catch let error as ModelError {
        throw CommandError("\(option): \(error)")
    }
}

/// A re-quantization request from `--draft-requantize` (or `bench model --requantize`): a format, optionally with
/// `+output` to convert the output matrix too, e.g. `q4_0` or `q4_0+output`.
struct RequantizeRequest: Equatable {
    var type: TensorType
    var output: Bool

    init(parsing text: String, option: String = "--draft-requantize") throws {
        let parts = text.lowercased().split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        let formats = Requantize.targets.map { $0.description.lowercased() }.sorted()
        guard (1...2).contains(parts.count),
            let type = Requantize.targets.first(where: {
                $0.description.lowercased() == parts[0]
            }), parts.count == 1 || parts[1] == "output"
        else {
            throw ValidationError(
                "\(option): '\(text)' is not a format to re-quantize to (\(formats.joined(separator: ", ")), optionally +output)"
            )
        }
        self.type = type
        output = parts.count == 2
    }

    /// What to ask a model load for.
    var requantization: Requantization { Requantization(type: type, output: output) }
}
