import Foundation
print("shoal-worker: placeholder")
