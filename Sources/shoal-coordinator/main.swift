import ArgumentParser
import Foundation
import Model
import Runtime

struct ShoalCoordinator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal-coordinator",
        abstract: "Run Hugging Face decoder models on one machine or across Shoal workers.",
        subcommands: [Generate.self, SynthModel.self, BenchLocal.self])
}

ShoalCoordinator.main()
