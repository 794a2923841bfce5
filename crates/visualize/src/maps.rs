//! A layer's feature maps as a grid of greyscale tiles.
//!
//! Each map is stretched from its own minimum (black) to its own maximum (white), so every map
//! shows where it responds most, whatever its scale; a map that is constant (a dead ReLU) comes
//! out black. Small maps are enlarged by a whole factor with nearest neighbour, so each unit is a
//! visible square.

use convnet_vision::Plane;
use image::RgbImage;

use crate::VisualizeError;
use crate::grid::{Grid, grey_image, upscale_factor, upscale_nearest};

/// A picture of feature maps and what it shows.
#[derive(Debug, Clone)]
pub struct MapPicture {
    pub image: RgbImage,
    /// `[width, height]` of a tile, and the enlargement factor of a map.
    pub tile: [u32; 2],
    pub scale: u32,
}

/// Draws `maps` (all of one size) in a near-square block under `caption`, each enlarged to at
/// least `min_tile` pixels a side.
pub fn feature_maps(
    maps: &[Plane],
    caption: &str,
    min_tile: u32,
) -> Result<MapPicture, VisualizeError> {
    let Some(first) = maps.first() else {
        return Err(VisualizeError::Invalid("no feature maps to draw".into()));
    };
    let (h, w) = (first.height, first.width);
    if maps.iter().any(|m| (m.height, m.width) != (h, w)) {
        return Err(VisualizeError::Invalid(
            "feature maps of different sizes cannot share a grid".into(),
        ));
    }
    let scale = upscale_factor(h.max(w), min_tile);
    let tile = [w as u32 * scale, h as u32 * scale];
    let grid = Grid::wrapping(maps.len(), tile).with_caption(caption);
    let image = grid.render(|r, c| {
        let map = maps.get(r * grid.cols + c)?;
        let (levels, _) = map.to_grey_levels();
        Some(upscale_nearest(&grey_image(&levels, w, h), scale))
    });
    Ok(MapPicture { image, tile, scale })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{CAPTION_HEIGHT, GAP};

    #[test]
    fn each_map_is_stretched_on_its_own_and_enlarged() {
        let a = Plane::new(2, 3, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let b = Plane::new(2, 3, vec![-100.0, 0.0, 0.0, 0.0, 0.0, -50.0]).unwrap();
        let dead = Plane::new(2, 3, vec![0.0; 6]).unwrap();
        let pic = feature_maps(&[a, b, dead], "conv1", 12).unwrap();
        assert_eq!((pic.scale, pic.tile), (4, [12, 8]));
        // Three maps: two columns, two rows.
        let [w, h] = Grid::new(2, 2, [12, 8]).with_caption("conv1").size();
        assert_eq!(pic.image.dimensions(), (w, h));
        let px = |tile_x: u32, tile_y: u32, x: u32, y: u32| {
            pic.image
                .get_pixel(
                    GAP + tile_x * (12 + GAP) + x * 4 + 1,
                    CAPTION_HEIGHT + GAP + tile_y * (8 + GAP) + y * 4 + 1,
                )
                .0[0]
        };
        assert_eq!((px(0, 0, 0, 0), px(0, 0, 2, 1)), (0, 255));
        // Map b's own range is -100..0: its zeros are white.
        assert_eq!(
            (px(1, 0, 0, 0), px(1, 0, 1, 0), px(1, 0, 2, 1)),
            (0, 255, 128)
        );
        assert_eq!(px(0, 1, 1, 1), 0, "a constant map is black");
    }

    #[test]
    fn empty_or_mixed_maps_are_errors() {
        assert!(feature_maps(&[], "x", 8).is_err());
        let a = Plane::new(1, 2, vec![0.0; 2]).unwrap();
        let b = Plane::new(2, 1, vec![0.0; 2]).unwrap();
        assert!(feature_maps(&[a, b], "x", 8).is_err());
    }
}
