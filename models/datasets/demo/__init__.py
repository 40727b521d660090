"""A demo catalogue made from nothing: parametric furniture in Pix3D's categories and synthetic photos of it.

``generate_demo(root)`` writes a folder ``read_folder(root)`` reads::

    root/
      pool/<category>/<category>_<NNN>.<obj|glb|ply|stl|off>   formats in turn; an obj brings its .mtl and .png
      photos/<category>_<NNN>_<k>.jpg                           the coloured model, lit and placed on a backdrop
      masks/<category>_<NNN>_<k>.png                            its silhouette in that photo
      queries.csv                                               image,shape_id,split,mask,category
      shapes.json                                               each shape's parameters and finishes
      .complete                                                 the generation parameters, written last

Each category has one generator of parts (boxes, cylinders, turned profiles, rounded cushions, bent panels), driven
by a parameter vector drawn from a seeded RNG: leg, back, arm, top and headboard styles, proportions, counts. A draw
too close to an earlier one of its category is rejected, so no two shapes are near-copies and retrieval must tell
them apart by geometry. Parts carry finishes (wood with grain, paint, fabric, leather, metal) that the obj, glb and
ply files store; stl and off keep geometry only, which is why the photos are rendered from the in-memory model.

Photos vary what real ones do: viewpoint (any azimuth, 0-35 degrees elevation, small roll), how much of the frame
the object fills (50-90 %, roughly centred like an object crop), lighting (direction, colour temperature,
intensity), finishes' colour and the backdrop (gradients, noise, wall and floor, patterns). Everything is drawn from
RNGs seeded by (seed, category, shape, photo): a rerun, or a resumed run, makes the same catalogue.

Modules: `geometry` (furniture parts), `furniture` (the generators and the parameters they read), `finishes`,
`photos`, and `catalogue` (designing the pieces and writing the folder).
"""

from photo2cad.models.datasets.demo.catalogue import (
    FORMATS,
    MAX_FACES,
    DemoShape,
    DemoSummary,
    design_catalogue,
    generate_demo,
)
from photo2cad.models.datasets.demo.furniture import CATEGORIES

__all__ = ["CATEGORIES", "FORMATS", "MAX_FACES", "DemoShape", "DemoSummary", "design_catalogue", "generate_demo"]
